"""The transfer protocol (``--ruleset transfer``): which hyperparameters move, the fixed rescale
search, and ``algobench submit`` end to end with its rescale trials kept apart from the scored ones."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

from algobench.cli import main
from algobench.errors import AlgobenchError
from algobench.layout import EVAL_FILE
from algobench.results import read_summary
from algobench.scoring.pipeline import score
from algobench.seeds import derive_seed
from algobench.trial_spec import TrialSpec
from algobench.tuning.halton import sample
from algobench.tuning.objective import trial_value
from algobench.tuning.search_space import load_search_space, parse_search_space
from algobench.tuning.transfer import (
    FACTOR_FILE,
    GRID,
    RESCALE_TRIALS,
    apply_factors,
    best_log10_factor,
    learning_rate_keys,
    reference_point,
    rescale_dir,
    rescaled,
    search_factors,
    second_round,
)
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"


def test_only_numeric_learning_rates_move():
    point = {
        "learning_rate": 1e-3, "embed_lr": 0.2, "one_minus_beta1": 0.1, "warmup_factor": 0.05,
        "use_lr": True, "lr_schedule": "cosine", "lr": 2,
    }  # fmt: skip
    assert learning_rate_keys(point) == ["embed_lr", "learning_rate", "lr"]
    moved = rescaled(point, 10.0)
    assert moved == {**point, "learning_rate": pytest.approx(1e-2), "embed_lr": pytest.approx(2.0), "lr": 20}


def test_the_reference_point_is_the_centre_of_ranges_and_the_first_of_a_list(tmp_path):
    ranges = load_search_space(SUBMISSIONS / "nadamw" / "tuning_search_space.json")
    centre = reference_point(ranges)
    assert centre["learning_rate"] == pytest.approx(math.sqrt(5e-4 * 1e-2))  # log range: geometric centre
    assert centre["beta2"] == 0.999 and centre["warmup_factor"] == 0.05
    listed = parse_search_space([{"learning_rate": 3e-3, "beta1": 0.9}, {"learning_rate": 1.0, "beta1": 0.5}])
    assert reference_point(listed) == {"learning_rate": 3e-3, "beta1": 0.9}
    choices = parse_search_space({"learning_rate": {"feasible_points": [0.1, 0.2, 0.3, 0.4]}})
    assert reference_point(choices) == {"learning_rate": 0.2}


def test_a_search_space_without_a_learning_rate_is_a_one_line_error():
    space = parse_search_space({"momentum": {"min": 0.8, "max": 0.99}}, source="sub/tuning_search_space.json")
    with pytest.raises(AlgobenchError, match=r"sub/tuning_search_space.json has no learning rate to rescale"):
        reference_point(space)


@pytest.mark.parametrize(
    ("first", "second", "best"),
    [
        ({-1.0: 3.0, 0.0: 2.0, 1.0: 2.5}, (-0.5, 0.5), 0.0),
        ({-1.0: None, 0.0: 3.0, 1.0: 2.0}, (0.5, 1.5), 1.0),  # no result ranks last; the best at the edge
        ({-1.0: 1.0, 0.0: 3.0, 1.0: 1.0}, (-1.5, -0.5), -1.0),  # a tie: nearest 0, then the smaller
        ({-1.0: 2.0, 0.0: 2.0, 1.0: 5.0}, (-0.5, 0.5), 0.0),  # a tie with 0: factor 1
        ({-1.0: None, 0.0: None, 1.0: None}, (-0.5, 0.5), 0.0),  # nothing ran: factor 1
    ],
)
def test_the_second_round_brackets_the_best_of_the_first(first, second, best):
    assert best_log10_factor(first) == best
    assert second_round(first) == second


def _summary(spec: TrialSpec, optimum_lr: float) -> dict:
    """A finished trial whose time-to-target grows with the distance of its learning rate from
    ``optimum_lr`` (in decades), missing the target beyond 1.2 decades."""
    distance = abs(math.log10(spec.hyperparameters["learning_rate"] / optimum_lr))
    reached = distance < 1.2
    return {
        "status": "target_reached" if reached else "out_of_time",
        "validation_target_value": 0.9, "metric_direction": "max", "max_allowed_runtime_sec": 10.0,
        "best_validation_metric": 0.9 if reached else 0.5, "time_to_target": 2.0 + 5 * distance if reached else None,
    }  # fmt: skip


def _study_specs(tmp_path: Path, workloads=("w1", "w2")) -> list[TrialSpec]:
    return [
        TrialSpec(
            submission_path=str(ADAMW),
            submission_name="adamw",
            workload_name=name,
            study=study,
            trial=trial,
            hyperparameters={"learning_rate": 1e-3 * trial, "beta1": 0.9},
            seed=100 * study + trial,
            experiment_dir=str(tmp_path),
        )  # fmt: skip
        for name in workloads
        for study in range(2)
        for trial in (1, 2)
    ]


def test_the_search_runs_five_trials_per_workload_on_one_seed_and_picks_the_fastest(tmp_path):
    reference = {"learning_rate": 1e-3, "beta1": 0.9}
    optimum = {"w1": 1e-3 * 10**0.6, "w2": 1e-3 * 10**-1.5}
    rounds: list[list[TrialSpec]] = []

    def run(batch):
        rounds.append(batch)
        return [(spec, _summary(spec, optimum[spec.workload_name])) for spec in batch]

    choices = search_factors(_study_specs(tmp_path), reference, seed=7, run=run)

    assert [len(batch) for batch in rounds] == [6, 4]  # both workloads in each round
    assert RESCALE_TRIALS == 5
    ran = {name: sorted(GRID[s.trial - 1] for batch in rounds for s in batch if s.workload_name == name)
           for name in optimum}  # fmt: skip
    assert ran == {"w1": [-1.0, 0.0, 0.5, 1.0, 1.5], "w2": [-1.5, -1.0, -0.5, 0.0, 1.0]}
    assert choices["w1"].log10_factor == 0.5 and choices["w2"].log10_factor == -1.5
    every = [spec for batch in rounds for spec in batch]
    assert {spec.seed for spec in every} == {derive_seed(7, 0x7A5F)}  # one seed for every factor
    assert all(spec.hyperparameters["beta1"] == 0.9 for spec in every)  # nothing else moves
    assert all(Path(spec.experiment_dir) == rescale_dir(tmp_path, spec.workload_name) for spec in every)

    record = json.loads((rescale_dir(tmp_path, "w1") / "adamw" / FACTOR_FILE).read_text())
    assert record["protocol"] == "transfer-v1" and record["factor"] == pytest.approx(10**0.5)
    assert record["rescaled"] == ["learning_rate"] and len(record["candidates"]) == 5
    assert min(record["candidates"], key=lambda c: c["surrogate"])["log10_factor"] == 0.5

    studies = apply_factors(_study_specs(tmp_path), choices)
    assert [s.hyperparameters["learning_rate"] for s in studies if s.workload_name == "w2"] == pytest.approx(
        [1e-3 * 10**-1.5, 2e-3 * 10**-1.5] * 2
    )
    assert [s.trial_dir() for s in studies] == [s.trial_dir() for s in _study_specs(tmp_path)]  # same trials


def submit(*args: str) -> int:
    return main(["submit", *args, "--quiet", "--scale", "tiny", "--threads", "1"])


def test_submit_under_transfer_rescales_the_studies_and_keeps_rescale_trials_out_of_the_score(tmp_path, capsys):
    experiment = tmp_path / "exp"
    args = (str(ADAMW), "--ruleset", "transfer", "--workloads", "digits_mlp", "--trials", "2", "--studies", "1",
            "--experiment-dir", str(experiment), "--seed", "3")  # fmt: skip
    assert submit(*args) == 0
    err = capsys.readouterr().err
    assert "transfer-v1: digits_mlp: learning rates x" in err
    assert "digits_mlp rescale trial x0.1:" in err and "digits_mlp rescale trial x10:" in err

    search = rescale_dir(experiment, "digits_mlp") / "adamw"
    rescale_trials = sorted(search.glob("study_0/digits_mlp_pytorch/trial_*"))
    assert len(rescale_trials) == 5
    summaries = {int(d.name.split("_")[1]): read_summary(d) for d in rescale_trials}
    assert all(s["ruleset"] == "transfer" and s["seed"] == summaries[4]["seed"] for s in summaries.values())
    record = json.loads((search / FACTOR_FILE).read_text())
    values = {GRID[trial - 1]: trial_value(summary) for trial, summary in summaries.items()}
    assert record["log10_factor"] == best_log10_factor(values)
    assert {c["log10_factor"]: c["surrogate"] for c in record["candidates"]} == pytest.approx(values)

    space = load_search_space(SUBMISSIONS / "adamw" / "tuning_search_space.json")
    halton = sample(space, 2, derive_seed(3, 0))
    studies = sorted(experiment.glob("adamw/study_0/digits_mlp_pytorch/trial_*"))
    lrs = [json.loads((d / "hparams.json").read_text())["learning_rate"] for d in studies]
    assert lrs == pytest.approx([p["learning_rate"] * record["factor"] for p in halton])
    assert all(read_summary(d)["ruleset"] == "transfer" for d in studies)

    # A rerun reuses every finished trial (rescale ones included) and so finds the same factor.
    logs_before = {d: (d / EVAL_FILE).stat().st_mtime_ns for d in (*rescale_trials, *studies)}
    assert submit(*args) == 0
    assert {d: (d / EVAL_FILE).stat().st_mtime_ns for d in logs_before} == logs_before
    assert json.loads((search / FACTOR_FILE).read_text())["factor"] == record["factor"]

    # Scoring reads the two study trials only: the rescale trials are tuning cost.
    from algobench.scoring.errors import Problems
    from algobench.scoring.logs import find_trials

    found = find_trials([experiment], Problems())
    assert sorted(Path(t.path) for t in found) == studies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one study of two trials: fewer than the protocol's, and said so
        scored = score(experiment, "algobench-v1")
    assert list(scored.trials["ruleset"]) == ["transfer", "transfer"]
    assert (scored.trials["budget_sec"] == read_summary(studies[0])["max_allowed_runtime_sec"]).all()  # x1, as external


def test_transfer_on_a_batch_cluster_needs_waiting(tmp_path):
    with pytest.raises(AlgobenchError, match="--ruleset transfer needs waiting"):
        main(["--debug", "slurm", "submit", str(ADAMW), "--ruleset", "transfer", "--cluster", "slurm", "--no-wait",
              "--experiment-dir", str(tmp_path)])  # fmt: skip


def test_transfer_through_the_batch_launcher_writes_the_same_layout(tmp_path):
    assert main(["slurm", "submit", str(ADAMW), "--ruleset", "transfer", "--cluster", "debug", "--workloads",
                 "digits_mlp", "--trials", "1", "--studies", "1", "--scale", "tiny", "--threads", "1",
                 "--experiment-dir", str(tmp_path)]) == 0  # fmt: skip
    search = rescale_dir(tmp_path, "digits_mlp") / "adamw"
    assert len(list(search.glob("study_0/digits_mlp_pytorch/trial_*/summary.json"))) == 5
    factor = json.loads((search / FACTOR_FILE).read_text())["factor"]
    (study_trial,) = tmp_path.glob("adamw/study_0/digits_mlp_pytorch/trial_*")
    halton = sample(load_search_space(SUBMISSIONS / "adamw" / "tuning_search_space.json"), 1, derive_seed(0, 0))
    assert json.loads((study_trial / "hparams.json").read_text())["learning_rate"] == pytest.approx(
        halton[0]["learning_rate"] * factor
    )


def test_a_trial_finished_under_another_ruleset_is_refused_not_reused(tmp_path):
    experiment = tmp_path / "exp"
    common = ("--workloads", "digits_mlp", "--trials", "1", "--studies", "1", "--experiment-dir", str(experiment))
    assert submit(str(ADAMW), *common) == 0  # external
    finished = experiment / "adamw" / "study_0" / "digits_mlp_pytorch" / "trial_1"
    before = (finished / "summary.json").read_text()
    with pytest.raises(AlgobenchError, match=r"trial_1 finished under --ruleset external, and this run is --ruleset "
                                             r"transfer: give each ruleset its own --experiment-dir"):  # fmt: skip
        main(["--debug", "submit", str(ADAMW), "--ruleset", "transfer", *common, "--scale", "tiny"])
    assert (finished / "summary.json").read_text() == before  # nothing written over
    assert not rescale_dir(experiment, "digits_mlp").exists()  # refused before any trial ran
