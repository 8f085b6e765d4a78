"""PBT on Ray Tune when a member crashes, against a real Ray: the crash ends that member only (its
summary says why), the others go through every round to the end and keep exploiting among
themselves, and the run ends in bounded time (a stalled synchronous population would wait for
ever: the run is a subprocess with a deadline). Synchronous mode is the default (every member
reaches a barrier before any goes past it, and every exploit is decided at a barrier they
share); ``mode: async`` runs and records its exploits."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from algobench.layout import TrialStatus
from algobench.tuning.events import read_eval_rows, read_lines, read_schedule, values_at
from tests.ray_corpus.crash_mid_run import CRASHES, DIVERGES

CRASHING = Path(__file__).parent / "ray_corpus" / "crash_mid_run.py"
MID_RUN, AT_BARRIER = sorted(CRASHES, key=CRASHES.get)  # the crashing rates: in step 31, in step 40
(DIVERGING,) = DIVERGES  # NaN parameters from step 15 on
CRASHER = 3  # the member that starts at MID_RUN
HOPELESS = 1e-6  # in the lower half at the first barrier, so a crasher is not replaced there
INTERVAL, MAX_STEPS = 20, 60
BARRIERS = (20, 40)
DEADLINE_SEC = 300  # a run took 35-95 s on a 2-core machine at load 3-6; a stalled one never ends
SPACE = {
    "learning_rate": {"min": 1e-6, "max": 1e-2, "scaling": "log"},
    "weight_decay": {"min": 1e-3, "max": 0.2, "scaling": "log"},
}
pytestmark = [pytest.mark.ray, pytest.mark.slow]  # three Ray Tune populations, 35-50 s each on a loaded 2-core machine


def tune_with_a_crasher(
    experiment: Path, address: str, rates: tuple[float, ...], *extra: str, **settings: object
) -> tuple[int, float]:
    """``algobench tune --tuner pbt --backend ray`` on the crashing submission, members starting at
    ``rates``, in a subprocess joined to the session's Ray; its exit code and wall time."""
    points = [{"learning_rate": lr, "weight_decay": 0.01} for lr in rates]
    config = {"population": 4, "interval": INTERVAL, "max_steps": MAX_STEPS, "quantile": 0.5,
              "resample_probability": 0.0, "initial_points": points, **settings}  # fmt: skip
    experiment.parent.mkdir(parents=True, exist_ok=True)
    (experiment.parent / "space.json").write_text(json.dumps(SPACE))
    (experiment.parent / "pbt.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "algobench.cli", "tune", str(CRASHING), "--tuner", "pbt", "--backend", "ray",
               "--ray-address", address, "--workloads", "digits_mlp", "--scale", "tiny", "--experiment-dir",
               str(experiment), "--config", str(experiment.parent / "pbt.yaml"), "--search-space",
               str(experiment.parent / "space.json"), "--quiet", "--no-stop-on-target", *extra]  # fmt: skip
    began = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_SEC, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the population did not finish within {DEADLINE_SEC} s: a crashed member stalled it")
    seconds = time.perf_counter() - began
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return done.returncode, seconds


def member_dir(experiment: Path, member: int) -> Path:
    (folder,) = experiment.glob(f"*/study_0/digits_mlp_pytorch/trial_{member}")
    return folder


def tuning_file(experiment: Path, name: str) -> list[dict]:
    return read_lines(experiment / "tuning/digits_mlp/study_0" / name)


def summary(experiment: Path, member: int) -> dict:
    return json.loads((member_dir(experiment, member) / "summary.json").read_text())


@pytest.fixture(scope="module")
def crashed(ray_cluster, tmp_path_factory) -> Path:
    """Four members in the default (synchronous) mode; member 3 crashes at step 30, between the barriers."""
    experiment = tmp_path_factory.mktemp("ray_crash") / "exp"
    _, seconds = tune_with_a_crasher(experiment, ray_cluster, (3e-3, HOPELESS, MID_RUN, HOPELESS))
    print(f"\nsync population with a crasher: {seconds:.1f} s")
    return experiment


def test_a_crashed_member_ends_alone_and_says_why(crashed):
    crash = summary(crashed, CRASHER)
    assert TrialStatus.parse(crash["status"]) is TrialStatus.FAILED
    assert "crash_mid_run: crashed in step 31" in crash["error"]
    assert "\n" not in crash["error"]
    rows = read_eval_rows(member_dir(crashed, CRASHER))
    assert [r["global_step"] for r in rows] == [10, 20, 30]  # it passed the first barrier, then crashed
    assert values_at(read_schedule(member_dir(crashed, CRASHER)), 10**9)["learning_rate"] == MID_RUN
    assert crash["steps"] == CRASHES[MID_RUN]
    ended = [r for r in tuning_file(crashed, "results.jsonl") if r["member"] == CRASHER and r["status"]]
    assert [(r["step"], TrialStatus.parse(r["status"])) for r in ended] == [(CRASHES[MID_RUN], TrialStatus.FAILED)]


def test_the_others_go_through_every_round_to_the_end(crashed):
    live = [m for m in range(1, 5) if m != CRASHER]
    for member in live:
        assert summary(crashed, member)["steps"] == MAX_STEPS
        assert TrialStatus.parse(summary(crashed, member)["status"]) is not TrialStatus.FAILED
        assert [r["global_step"] for r in read_eval_rows(member_dir(crashed, member))] == list(range(10, 61, 10))
    rounds = [e for e in tuning_file(crashed, "events.jsonl") if e["event"] == "round"]
    assert [r["step"] for r in rounds] == list(BARRIERS)
    assert set(rounds[0]["fitness"]) == {"1", "2", "3", "4"}
    assert set(rounds[1]["fitness"]) == {str(m) for m in live}  # the crasher is no longer compared
    exploits = [e for e in tuning_file(crashed, "events.jsonl") if e["event"] == "exploit"]
    first, second = ([e for e in exploits if e["step"] == b] for b in BARRIERS)
    assert sorted(e["member"] for e in first) == [2, 4]  # the hopeless pair, replaced while the crasher was alive
    assert len(second) == 1 and CRASHER not in (second[0]["member"], second[0]["donor"])  # 3 live: one replaced
    assert all(e["donor_fitness"] > e["fitness"] for e in exploits)
    segments = tuning_file(crashed, "segments.jsonl")
    assert sorted((s["member"], s["start_step"]) for s in segments) == sorted(
        [(CRASHER, 0), (CRASHER, 20)] + [(m, s) for m in live for s in (0, 20, 40)]
    )


def test_synchronous_mode_is_the_default(crashed):
    settings = json.loads((crashed / "tuning/digits_mlp/study_0/settings.json").read_text())
    assert settings["backend"] == "ray" and settings["settings"]["mode"] == "sync"
    results = tuning_file(crashed, "results.jsonl")
    for barrier in BARRIERS:
        due = {r["member"] for r in results if r["step"] >= barrier or r["status"] is None}
        due -= {r["member"] for r in results if r["status"] and r["step"] < barrier}  # ended before it
        arrivals = [i for i, r in enumerate(results) if r["step"] == barrier]
        assert {results[i]["member"] for i in arrivals} == due
        past = [i for i, r in enumerate(results) if r["step"] > barrier]
        assert max(arrivals) < min(past), f"a member went past step {barrier} before every member reached it"
    # Each barrier decides once, on every live member's fitness there: exactly the lower quantile
    # (Ray's count: ceil(n x 0.5), at most n / 2) is replaced, each from the upper quantile.
    # (Asynchronous PBT decides per member on whoever has reported: its first barrier here has none.)
    log = tuning_file(crashed, "events.jsonl")
    for line in (e for e in log if e["event"] == "round"):
        fitness = {int(m): f for m, f in line["fitness"].items()}
        count = min(math.ceil(len(fitness) * 0.5), len(fitness) // 2)
        ranked = sorted(fitness.values())
        decided = [e for e in log if e["event"] == "exploit" and e["step"] == line["step"]]
        assert len(decided) == line["exploits"] == count
        for exploit in decided:
            assert exploit["donor_step"] == exploit["step"]
            assert fitness[exploit["member"]] <= ranked[count - 1] and fitness[exploit["donor"]] >= ranked[-count]


def test_members_that_end_are_neither_waited_for_nor_compared(ray_cluster, tmp_path):
    """One trial at a time: member 3 diverges before the first barrier, and member 4 crashes in
    step 40, the last to report there, while the others are paused at that barrier waiting for it.
    Ray's synchronous PBT would wait for ever (a member's last, ``done`` result never reaches its
    decision), and Ray refuses a result without the metric (a diverged member's), ending the run."""
    experiment = tmp_path / "exp"
    rates = (3e-3, HOPELESS, DIVERGING, AT_BARRIER)
    _, seconds = tune_with_a_crasher(experiment, ray_cluster, rates, "--parallel", "1")
    print(f"\nsync population, a divergence and a crash in a barrier step: {seconds:.1f} s")
    diverged, crash = summary(experiment, 3), summary(experiment, 4)
    assert TrialStatus.parse(diverged["status"]) is TrialStatus.DIVERGED and diverged["steps"] < BARRIERS[0]
    assert TrialStatus.parse(crash["status"]) is TrialStatus.FAILED and crash["steps"] == CRASHES[AT_BARRIER]
    assert "crash_mid_run: crashed in step 40" in crash["error"]
    assert [r["global_step"] for r in read_eval_rows(member_dir(experiment, 4))] == [10, 20, 30]
    for member in (1, 2):
        assert summary(experiment, member)["steps"] == MAX_STEPS
        assert [r["global_step"] for r in read_eval_rows(member_dir(experiment, member))] == list(range(10, 61, 10))
    log = tuning_file(experiment, "events.jsonl")
    rounds = {e["step"]: e for e in log if e["event"] == "round"}
    assert sorted(rounds) == list(BARRIERS)
    assert set(rounds[20]["fitness"]) == {"1", "2", "4"} and set(rounds[40]["fitness"]) == {"1", "2"}
    exploits = [e for e in log if e["event"] == "exploit"]
    assert [e["step"] for e in exploits] == list(BARRIERS)  # one of three, then one of two
    assert all(3 not in (e["member"], e["donor"]) for e in exploits)
    assert 4 not in (exploits[1]["member"], exploits[1]["donor"])  # dead at 40: no donor, no recipient


def test_async_mode_runs_and_records_its_exploits(ray_cluster, tmp_path):
    experiment = tmp_path / "exp"
    _, seconds = tune_with_a_crasher(experiment, ray_cluster, (3e-3, HOPELESS, MID_RUN, HOPELESS), mode="async")
    print(f"\nasync population with a crasher: {seconds:.1f} s")
    settings = json.loads((experiment / "tuning/digits_mlp/study_0/settings.json").read_text())
    assert settings["settings"]["mode"] == "async"
    exploits = [e for e in tuning_file(experiment, "events.jsonl") if e["event"] == "exploit"]
    assert exploits and all(e["donor_fitness"] > e["fitness"] and e["changes"] for e in exploits)
    assert {e["member"] for e in exploits} & {2, 4}  # a hopeless member was replaced
    for member in range(1, 5):
        ended = summary(experiment, member)
        if TrialStatus.parse(ended["status"]) is TrialStatus.FAILED:
            assert member == CRASHER and "crash_mid_run" in ended["error"]
        else:
            assert ended["steps"] == MAX_STEPS
    for exploit in exploits:  # each forked lineage carries its change point
        points = {p.global_step: p for p in read_schedule(member_dir(experiment, exploit["member"]))}
        last = [e for e in exploits if e["member"] == exploit["member"]][-1]
        assert points[last["step"]].hyperparameters == last["changes"]
