"""PBT's fitness on a tuning split held out from the training data: the split itself (fixed,
disjoint from what is trained on, no larger than the validation set), a population that decides on
it while its segments and scores stay on the validation metric, and replays that hold out the same
examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from algobench.errors import AlgobenchError
from algobench.tuning.events import read_eval_rows, read_lines
from algobench.tuning.pbt import PBT
from algobench.tuning.tuners import make_settings
from algobench.workloads.base import Splits
from tests.test_pbt import BASE, GOOD, HOPELESS, SPACE, events, member_dir, metric_rows, task, tune


def numbered(count: int, start: int) -> dict:
    values = torch.arange(start, start + count)
    return {"inputs": {"x": values.float()[:, None]}, "targets": values}


def test_the_held_out_examples_leave_training_and_are_the_same_every_time():
    splits = Splits(numbered(100, 0), numbered(15, 1000), numbered(15, 2000))
    held = splits.holding_out(0.1)
    assert held.tuning["targets"].shape[0] == 10 and held.train["targets"].shape[0] == 90
    kept, tuning = set(held.train["targets"].tolist()), set(held.tuning["targets"].tolist())
    assert not kept & tuning and kept | tuning == set(range(100))
    assert torch.equal(held.tuning["inputs"]["x"][:, 0].long(), held.tuning["targets"])  # rows stay whole
    assert tuning != set(range(90, 100))  # drawn, not the last examples
    assert torch.equal(splits.holding_out(0.1).tuning["targets"], held.tuning["targets"])
    assert held.validation is splits.validation and held.test is splits.test
    assert splits.holding_out(0.4).tuning["targets"].shape[0] == 15  # never more than the validation set


def test_a_split_that_holds_out_nothing_or_everything_is_refused():
    splits = Splits(numbered(10, 0), numbered(10, 100), numbered(10, 200))
    with pytest.raises(AlgobenchError, match="tuning split 0.01 of 10 training examples holds out 0"):
        splits.holding_out(0.01)


def test_a_workload_evaluates_the_tuning_split_it_no_longer_trains_on():
    from algobench.workloads import get_workload

    workload = get_workload("digits_mlp", scale="tiny")
    whole = workload.num_train_examples
    held = get_workload("digits_mlp", scale="tiny")
    held.hold_out_tuning_split(0.2)
    assert held.num_train_examples == whole - round(0.2 * whole)
    model, _ = held.init_model_fn(0)
    metrics = held.eval_model(256, model, None, None, None, None, 0)
    assert metrics["tuning/num_examples"] == round(0.2 * whole)
    assert 0 <= metrics["tuning/accuracy"] <= 1 and "validation/accuracy" in metrics
    assert "tuning/accuracy" not in workload.eval_model(256, model, None, None, None, None, 0)
    with pytest.raises(AlgobenchError, match="before the data is loaded"):
        held.hold_out_tuning_split(0.1)


@pytest.mark.parametrize("split", [0.7, -0.1])
def test_a_fitness_split_out_of_range_is_a_one_line_error(split, tmp_path):
    with pytest.raises(AlgobenchError) as error:
        make_settings(PBT.Settings, "pbt", [("pbt.yaml", {"fitness_split": split})], task(tmp_path))
    assert f"fitness_split must be in [0, 0.5], got {split}" in str(error.value) and "\n" not in str(error.value)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> Path:
    """Two members, one with a hopeless learning rate, deciding on 20 % of the training data."""
    root = tmp_path_factory.mktemp("held_out")
    space = root / "space.json"
    space.write_text(json.dumps(SPACE))
    points = [{**BASE, "learning_rate": lr} for lr in (GOOD[0], HOPELESS)]
    config = {"population": 2, "interval": 20, "max_steps": 40, "quantile": 0.5, "resample_probability": 0.0,
              "initial_points": points, "fitness_split": 0.2}  # fmt: skip
    assert tune(root / "exp", config=config, space=space) == 0
    return root / "exp"


def test_the_population_decides_on_the_tuning_split_and_is_scored_on_validation(held_out):
    (decision,) = [e for e in events(held_out) if e["event"] == "round"]
    # Member 1 is never forked, so its log is its own (member 2's now continues member 1's).
    rows = [r for r in read_eval_rows(member_dir(held_out, 1)) if r["global_step"] <= decision["step"]]
    tuning = np.mean([r["tuning/accuracy"] for r in rows[-2:]])
    validation = np.mean([r["validation/accuracy"] for r in rows[-2:]])
    assert decision["fitness"]["1"] == pytest.approx(tuning)
    assert tuning != pytest.approx(validation)  # two different sets of examples
    assert {r["tuning/num_examples"] for r in rows} == {240}  # 20 % of digits' 1200 training examples
    (exploit,) = [e for e in events(held_out) if e["event"] == "exploit"]
    assert exploit["member"] == 2 and exploit["donor"] == 1 and exploit["metric"] == "tuning/accuracy"
    segments = read_lines(held_out / "tuning/digits_mlp/study_0/segments.jsonl")
    rows = {r["global_step"]: r for r in read_eval_rows(member_dir(held_out, 1))}
    for segment in (s for s in segments if s["member"] == 1):  # scoring reads the target's metric
        assert [value for _, _, value in segment["evals"]] == [rows[step]["validation/accuracy"]
                                                               for step, _, _ in segment["evals"]]  # fmt: skip
    settings = json.loads((held_out / "tuning/digits_mlp/study_0/settings.json").read_text())
    assert settings["tuning_split"] == 0.2 and settings["settings"]["fitness_split"] == 0.2


def test_a_replay_holds_out_the_same_examples_and_reproduces_the_log(held_out, tmp_path):
    from algobench.executors.inprocess import InProcessExecutor
    from algobench.tuning.driver import drive_specs
    from algobench.tuning.lineage import find_lineage, replay_specs

    lineage = find_lineage(held_out, 2)
    own = replay_specs(lineage, seeds=None, workloads=["digits_mlp"], experiment_dir=tmp_path / "own")
    assert [spec.tuning_split for spec in own] == [0.2]
    drive_specs(own, InProcessExecutor())
    assert metric_rows(read_eval_rows(own[0].trial_dir())) == metric_rows(read_eval_rows(lineage.trial_dir))
