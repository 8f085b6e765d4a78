"""PBT and PB2 on Ray Tune, against a real Ray: a population whose hopeless half is rescued as
native PBT rescues it, forks that take the new values after the donor's state is restored
(asserted on the torch optimizer), lineages that continue their donors' logs, the event log in
native PBT's format, and ``tune score``/``replay``/``export`` reading the run unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from algobench.cli import main
from algobench.tuning.events import read_eval_rows, read_lines, read_schedule, values_at
from tests.test_pbt import ADAMW, BASE, GOOD, HOPELESS, SPACE  # the same population as native PBT's test

ROUNDS = 2  # decisions at steps 20 and 40 of 60
STARTING_LEARNING_RATES = (GOOD[0], HOPELESS, GOOD[1], HOPELESS)  # members 1-4
pytestmark = pytest.mark.ray


def tune_on_ray(experiment: Path, tuner: str, config: dict, *extra: str) -> int:
    space = experiment.parent / "space.json"
    space.write_text(json.dumps(SPACE))
    path = experiment.parent / f"{experiment.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["tune", str(ADAMW), "--tuner", tuner, "--workloads", "digits_mlp", "--scale", "tiny",
            "--experiment-dir", str(experiment), "--config", str(path), "--search-space", str(space),
            "--quiet", "--no-stop-on-target", *extra]  # fmt: skip
    return main(args)


@pytest.fixture(scope="module")
def rescued(ray_cluster, tmp_path_factory) -> Path:
    """Four members on Ray Tune's PBT, two starting with a hopeless learning rate."""
    root = tmp_path_factory.mktemp("ray_rescued")
    points = [{**BASE, "learning_rate": lr} for lr in STARTING_LEARNING_RATES]
    config = {"population": 4, "interval": 20, "max_steps": 60, "quantile": 0.5, "resample_probability": 0.0,
              "initial_points": points}  # fmt: skip
    assert tune_on_ray(root / "exp", "pbt", config, "--backend", "ray") in (0, 1)
    return root / "exp"


def member_dir(experiment: Path, member: int, name: str = "adamw_pbt") -> Path:
    return experiment / name / "study_0/digits_mlp_pytorch" / f"trial_{member}"


def events(experiment: Path) -> list[dict]:
    return read_lines(experiment / "tuning/digits_mlp/study_0/events.jsonl")


@pytest.mark.slow  # one Ray Tune population (about 80 s) serves the four
def test_the_hopeless_half_is_rescued_as_native_pbt_rescues_it(rescued):
    # the extremes a good member can reach by perturbing every round (rounding: 1e-12 relative)
    low, high = GOOD[0] * 0.8**ROUNDS * (1 - 1e-12), min(GOOD[1] * 1.2**ROUNDS, 1e-2) * (1 + 1e-12)
    for member in range(1, 5):
        final = values_at(read_schedule(member_dir(rescued, member)), 10**9)["learning_rate"]
        assert low <= final <= high, f"member {member} ends at learning rate {final}"
        summary = json.loads((member_dir(rescued, member) / "summary.json").read_text())
        assert summary["steps"] == 60 and summary["best_validation_metric"] > 0.5
    first = [e for e in events(rescued) if e["event"] == "exploit" and e["round"] == 1]
    assert sorted(e["member"] for e in first) == [2, 4]  # the hopeless ones copy at the first barrier
    assert all(e["donor"] in (1, 3) and e["old_hyperparameters"]["learning_rate"] == HOPELESS for e in first)
    settings = json.loads((rescued / "tuning/digits_mlp/study_0/settings.json").read_text())
    assert settings["backend"] == "ray" and settings["tuner"] == "pbt" and settings["members"] == 4


def learning_rate_when_copied(exploits: list[dict], donor: int, step: int) -> float:
    """The donor's learning rate at ``step`` in its own lineage, from the event log. Its schedule
    file cannot say: a donor that forks later continues its own donor's log from then on."""
    value = STARTING_LEARNING_RATES[donor - 1]
    for exploit in exploits:
        if exploit["member"] == donor and exploit["step"] <= step:
            value = exploit["changes"].get("learning_rate", value)
    return value


@pytest.mark.slow  # one Ray Tune population (about 80 s) serves the four
def test_a_fork_takes_the_new_values_after_the_donors_state_is_restored(rescued):
    import torch

    exploits = [e for e in events(rescued) if e["event"] == "exploit"]
    assert exploits and all(e["changes"] for e in exploits)
    for member in sorted({e["member"] for e in exploits}):
        last = [e for e in exploits if e["member"] == member][-1]
        saved = torch.load(member_dir(rescued, member) / "checkpoint.pt", map_location="cpu", weights_only=False)
        group = saved["learner"]["optimizer_state"]["optimizer"][1]["param_groups"][0]
        final = values_at(read_schedule(member_dir(rescued, member)), 10**9)
        # The member's own (perturbed) values, not the donor's that came with its optimizer state. (Its own
        # values before the fork are no reference: 3e-3 perturbed by 1.2 lands on a member's own 3.6e-3.)
        assert group["initial_lr"] == pytest.approx(final["learning_rate"])
        copied = learning_rate_when_copied(exploits, last["donor"], last["donor_step"])
        assert any(group["initial_lr"] == pytest.approx(copied * f) for f in (0.8, 1.2))  # perturbed
        assert 0 < group["lr"] <= group["initial_lr"]  # the cosine schedule's shape, scaled
        assert group["weight_decay"] == pytest.approx(final["weight_decay"])
        assert group["betas"][0] == pytest.approx(1 - final["one_minus_beta1"])


@pytest.mark.slow  # one Ray Tune population (about 80 s) serves the four
def test_every_lineage_continues_its_donors_log(rescued):
    exploits = [e for e in events(rescued) if e["event"] == "exploit"]
    assert [r["step"] for r in events(rescued) if r["event"] == "round"] == [20, 40]
    for exploit in exploits:
        assert exploit["donor_fitness"] > exploit["fitness"]
    for member in {e["member"] for e in exploits}:
        last = [e for e in exploits if e["member"] == member][-1]
        rows = read_eval_rows(member_dir(rescued, member))
        before = [r for r in rows if r["global_step"] <= last["step"]]
        assert float(np.mean([r["validation/accuracy"] for r in before[-2:]])) == pytest.approx(last["donor_fitness"])
        assert [r["global_step"] for r in rows] == list(range(10, 61, 10))  # never restarted from scratch
        points = {p.global_step: p for p in read_schedule(member_dir(rescued, member))}
        assert points[last["step"]].hyperparameters == last["changes"]
        assert points[last["step"]].reseed == last["reseed"]
    segments = read_lines(rescued / "tuning/digits_mlp/study_0/segments.jsonl")
    assert sorted((s["member"], s["start_step"]) for s in segments) == [
        (m, s) for m in range(1, 5) for s in (0, 20, 40)
    ]


@pytest.mark.slow  # one Ray Tune population (about 80 s) serves the four
def test_score_replay_and_export_read_a_ray_run(rescued, tmp_path, capsys):
    from algobench.executors.inprocess import InProcessExecutor
    from algobench.tuning.driver import drive_specs
    from algobench.tuning.lineage import find_lineage, replay_specs, write_export

    assert main(["tune", "score", str(rescued)]) == 0
    assert "adamw_pbt" in capsys.readouterr().out
    member = next(e["member"] for e in events(rescued) if e["event"] == "exploit")
    lineage = find_lineage(rescued, member)
    own = replay_specs(lineage, seeds=None, workloads=["digits_mlp"], experiment_dir=tmp_path / "own")
    drive_specs(own, InProcessExecutor())
    timing = ("score", "total_duration", "process_cpu_time", "preemption_count")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing and not k.endswith("_time")} for r in rows]  # noqa: E731
    assert strip(read_eval_rows(own[0].trial_dir())) == strip(read_eval_rows(lineage.trial_dir))
    exported = write_export(lineage, tmp_path / "schedule.py")
    assert "HYPERPARAMETER_SCHEDULE" in exported.read_text()


@pytest.mark.slow
def test_pb2_explores_within_the_log_bounds_and_records_its_schedule(ray_cluster, tmp_path):
    points = [{**BASE, "learning_rate": lr} for lr in STARTING_LEARNING_RATES]
    config = {"population": 4, "interval": 20, "max_steps": 60, "quantile": 0.5, "initial_points": points}
    assert tune_on_ray(tmp_path / "exp", "pb2", config) in (0, 1)
    exploits = [e for e in events(tmp_path / "exp") if e["event"] == "exploit"]
    assert exploits, "pb2 must have exploited"
    low, high = math.log(SPACE["learning_rate"]["min"]), math.log(SPACE["learning_rate"]["max"])
    for exploit in exploits:
        assert low <= math.log(exploit["new_hyperparameters"]["learning_rate"]) <= high
    last = {e["member"]: e for e in exploits}  # a later fork replaces the lineage an earlier one began
    for member, exploit in last.items():
        points = {p.global_step: p for p in read_schedule(member_dir(tmp_path / "exp", member, "adamw_pb2"))}
        assert points[exploit["step"]].hyperparameters == exploit["changes"]
    settings = json.loads((tmp_path / "exp/tuning/digits_mlp/study_0/settings.json").read_text())
    assert settings["tuner"] == "pb2" and settings["settings"]["explored"] == ["learning_rate", "one_minus_beta1",
                                                                             "weight_decay"]  # fmt: skip


def test_what_ray_tune_cannot_do_is_one_line(ray_cluster, tmp_path, capsys):
    config = {"population": 2, "interval": 20, "max_steps": 40, "selection": "tournament"}
    assert tune_on_ray(tmp_path / "exp", "pbt", config, "--backend", "ray") == 2
    assert "Ray Tune selects by truncation" in capsys.readouterr().err
    config = {"population": 2, "interval": 20, "max_steps": 40, "resample_probability": 0.5}
    assert tune_on_ray(tmp_path / "exp2", "pb2", config) == 2
    assert "resample_probability is a setting of pbt" in capsys.readouterr().err
