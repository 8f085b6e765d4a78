"""Batch runs through submitit: on a real SLURM cluster where one answers, locally everywhere.

The cluster tests need ``sinfo`` to answer (CI starts a one-node cluster with
``slurm/cluster/up.sh`` and exports SLURM_CONF); elsewhere they skip, saying why.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from algobench.errors import AlgobenchError
from algobench.experiment import plan_trials
from algobench.results import EVAL_FILE, read_summary
from algobench.slurm.launch import JOB_FILE, check_cluster, launch
from algobench.slurm.profiles import ClusterProfile, load_profile
from algobench.slurm.status import experiment_status
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
PROFILE = ClusterProfile(partition="debug", time_min=10, mem_gb=2, cpus=1, array_parallelism=2)


def slurm_unreachable_reason() -> str | None:
    if shutil.which("sinfo") is None:
        return "no SLURM here (sinfo not on PATH); CI starts one with slurm/cluster/up.sh"
    try:
        probe = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 10 s"
    if probe.returncode != 0:
        return f"SLURM not reachable: {probe.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    reason = slurm_unreachable_reason()
    if reason:
        pytest.skip(reason)


def specs_for(experiment: Path, workloads=("digits_mlp",), trials=2, **kwargs):
    return plan_trials(ADAMW, workloads=list(workloads), num_trials=trials, num_studies=1,
                       experiment_dir=experiment, seed=1, **kwargs)  # fmt: skip


def eval_steps(trial_dir: Path) -> list[tuple[int, int]]:
    with open(trial_dir / EVAL_FILE) as handle:
        return [(int(r["global_step"]), int(r["preemption_count"])) for r in csv.DictReader(handle)]


def wait_for_rows(trial_dir: Path, rows: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    path = trial_dir / EVAL_FILE
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > rows:
            return
        time.sleep(0.5)
    raise AssertionError(f"{path} did not reach {rows} rows in {timeout} s")


def relative_files(experiment: Path) -> set[str]:
    return {
        p.relative_to(experiment).as_posix()
        for p in experiment.rglob("*")
        if p.is_file() and ".submitit" not in p.parts and p.name != JOB_FILE
    }


# --- without a cluster ------------------------------------------------------------------------
def test_profile_loads_and_the_command_line_wins(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("partition: gpu\ntime_min: 90\nsetup: ['module load cuda']\nadditional: {qos: high}\n")
    profile = load_profile(path).with_overrides(time_min=15, partition=None)
    assert profile == ClusterProfile(partition="gpu", time_min=15, setup=("module load cuda",),
                                     additional={"qos": "high"})  # fmt: skip
    assert load_profile(Path(__file__).parent.parent / "slurm" / "profiles" / "example.yaml").partition == "debug"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partiton: gpu\n", "unknown profile keys ['partiton']"),
        ("time_min: soon\n", "'time_min' must be an integer"),
        ("setup: module load cuda\n", "'setup' must be a list of shell lines"),
        ("- a\n- b\n", "a profile is a mapping"),
        ("partition: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_profiles_name_file_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(AlgobenchError, match=rf"{path}: .*") as caught:
        load_profile(path)
    assert message in str(caught.value)


def test_no_slurm_suggests_local(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(AlgobenchError, match="use --cluster local"):
        check_cluster("slurm")


def test_debug_cluster_runs_the_same_trials_in_this_process(tmp_path):
    launched = launch(specs_for(tmp_path, trials=1), cluster="debug", profile=PROFILE)
    assert [item.outcome for item in launched] == ["target_reached"]
    summary = read_summary(launched[0].spec.trial_dir())
    assert summary["status"] == "target_reached"
    assert json.loads((launched[0].spec.trial_dir() / JOB_FILE).read_text())["cluster"] == "debug"


# --- on a real cluster ------------------------------------------------------------------------
@pytest.mark.slurm
def test_sweep_of_two_workloads_and_two_trials_is_scoreable(cluster, tmp_path):
    from algobench.scoring import score

    specs = specs_for(tmp_path, workloads=("digits_mlp", "mnist1d"))
    launched = launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=600)
    assert all(item.outcome == "target_reached" for item in launched), [(i.spec.trial_dir(), i.cause) for i in launched]
    assert len({item.job.job_id.split("_")[0] for item in launched}) == 1  # one job array
    result = score([tmp_path])
    assert list(result.scores.index) == ["adamw"]
    assert result.scores.loc["adamw", "score"] == 1.0
    status = experiment_status(tmp_path)
    assert [s.job_state for s in status] == ["COMPLETED"] * 4
    # Resubmitting a finished experiment submits nothing.
    again = launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=60)
    assert all(item.job is None for item in again)


@pytest.mark.slurm
def test_cancelled_job_is_failed_and_retry_failed_reruns_only_it(cluster, tmp_path):
    specs = specs_for(tmp_path, stop_on_target=False)
    first = launch(specs, cluster="slurm", profile=PROFILE, wait=False)
    wait_for_rows(specs[0].trial_dir(), 1)
    subprocess.run(["scancel", first[0].job.job_id], check=True)
    settled = launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=300)
    assert settled[0].job is None and settled[0].outcome == "failed"  # recorded, not resubmitted
    assert settled[1].job.job_id == first[1].job.job_id  # still running: attached, not resubmitted
    cancelled = read_summary(specs[0].trial_dir())
    assert cancelled["status"] == "failed" and "CANCELLED" in cancelled["error"]
    assert read_summary(specs[1].trial_dir())["status"] in ("target_reached", "out_of_time")
    other_job = (specs[1].trial_dir() / JOB_FILE).read_text()

    retried = launch(specs, cluster="slurm", profile=PROFILE, retry_failed=True, wait_timeout_sec=300)
    assert retried[1].job is None and retried[0].job is not None
    assert retried[0].job.job_id != first[0].job.job_id
    assert read_summary(specs[0].trial_dir())["status"] in ("target_reached", "out_of_time")
    assert (specs[1].trial_dir() / JOB_FILE).read_text() == other_job


@pytest.mark.slurm
def test_interrupted_job_is_requeued_and_resumes_without_lost_or_duplicated_rows(cluster, tmp_path):
    specs = specs_for(tmp_path, trials=1, stop_on_target=False)
    trial_dir = specs[0].trial_dir()
    first = launch(specs, cluster="slurm", profile=PROFILE, wait=False)
    wait_for_rows(trial_dir, 2)
    first[0].job._interrupt()  # preemption: SIGTERM then USR2, as SLURM sends it
    launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=400)
    summary = read_summary(trial_dir)
    assert summary["status"] in ("target_reached", "out_of_time")
    assert summary["preemption_count"] >= 1
    steps = eval_steps(trial_dir)
    assert [s for s, _ in steps] == sorted({s for s, _ in steps})  # increasing, no duplicates
    assert {p for _, p in steps} >= {0, 1}


@pytest.mark.slurm
def test_local_cluster_gives_the_same_layout_as_slurm(cluster, tmp_path):
    for name, cluster_name in (("slurm", "slurm"), ("local", "local")):
        launched = launch(specs_for(tmp_path / name, trials=1), cluster=cluster_name, profile=PROFILE,
                          wait_timeout_sec=300)  # fmt: skip
        assert launched[0].outcome == "target_reached"
    assert relative_files(tmp_path / "slurm") == relative_files(tmp_path / "local")
    assert "adamw/study_0/digits_mlp_pytorch/trial_1/summary.json" in relative_files(tmp_path / "local")
