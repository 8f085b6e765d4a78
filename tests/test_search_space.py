"""AlgoPerf's search-space format: parsing, clear errors, seeded Halton sampling."""

from __future__ import annotations

import json
import math

import pytest

from algobench.errors import SearchSpaceError
from algobench.tuning.halton import sample
from algobench.tuning.search_space import load_search_space, parse_search_space

SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-1, "scaling": "log"},
    "weight_decay": {"min": 0.0, "max": 0.5},
    "warmup_factor": {"feasible_points": [0.02, 0.05, 0.1]},
}


def test_same_seed_same_points_other_seed_other_points():
    space = parse_search_space(SPACE)
    assert sample(space, 8, seed=11) == sample(space, 8, seed=11)
    assert sample(space, 8, seed=11) != sample(space, 8, seed=12)


def test_points_lie_in_their_ranges_and_log_scaling_spreads_decades():
    points = sample(parse_search_space(SPACE), 64, seed=0)
    lrs = [p["learning_rate"] for p in points]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    assert all(0.0 <= p["weight_decay"] <= 0.5 for p in points)
    assert {p["warmup_factor"] for p in points} == {0.02, 0.05, 0.1}
    # Quasi-random on a log scale: each of the three decades gets about a third of the points.
    decades = [sum(10**-k <= lr < 10 ** -(k - 1) for lr in lrs) for k in (4, 3, 2)]
    assert all(15 <= n <= 28 for n in decades), decades


def test_list_of_points_is_taken_in_order():
    space = parse_search_space([{"learning_rate": 0.1}, {"learning_rate": 0.2}, {"learning_rate": 0.3}])
    assert sample(space, 2, seed=5) == [{"learning_rate": 0.1}, {"learning_rate": 0.2}]
    with pytest.raises(SearchSpaceError, match="4 trials asked for but the list holds only 3 points"):
        sample(space, 4, seed=5)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"lr": {"min": 1.0, "max": 0.1}}, "parameter 'lr': needs finite min <= max"),
        ({"lr": {"min": 0.0, "max": 0.1, "scaling": "log"}}, "parameter 'lr': log scaling needs min > 0"),
        ({"lr": {"min": 0.1, "max": 1.0, "scaling": "exp"}}, "parameter 'lr': scaling must be one of"),
        ({"lr": {"max": 1.0}}, "parameter 'lr': needs 'min' and 'max'"),
        ({"lr": {"feasible_points": []}}, "parameter 'lr': feasible_points must be a non-empty list"),
        ({"lr": {"min": "a", "max": 1}}, "parameter 'lr': min and max must be numbers"),
        ({"lr": 0.1}, "parameter 'lr': expected an object"),
        ([], "a list search space must be non-empty objects"),
        ("lr", "expected an object of parameters or a list of points"),
    ],
)
def test_malformed_spaces_name_the_problem(tmp_path, raw, message):
    path = tmp_path / "tuning_search_space.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SearchSpaceError) as caught:
        load_search_space(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "space.json"
    path.write_text('{\n  "lr": {"min": 0.1, "max": 1.0},\n  "wd": {"min": 0.1 "max": 1.0}\n}\n')
    with pytest.raises(SearchSpaceError, match=rf"{path}:3: not valid JSON"):
        load_search_space(path)


def test_values_are_plain_python_numbers():
    point = sample(parse_search_space(SPACE), 1, seed=0)[0]
    assert type(point["learning_rate"]) is float
    assert math.isfinite(point["learning_rate"])
    json.dumps(point)
