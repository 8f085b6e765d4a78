"""Batch runs through submitit: on a real SLURM cluster where one answers, locally everywhere.

The tests marked ``slurm`` need a cluster with accounting (CI starts a one-node one with
``slurm/cluster/up.sh`` and exports SLURM_CONF); elsewhere they skip, saying why. The others
run the same jobs with ``--cluster debug`` and ``--cluster local``, and check the pieces that
need no cluster (profiles, causes, status).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from algobench.cli import build_parser, main, plan_from_args
from algobench.errors import AlgobenchError
from algobench.layout import CHECKPOINT_FILE, EVAL_FILE, SUMMARY_FILE
from algobench.results import read_summary, write_json
from algobench.slurm import executor as executor_module
from algobench.slurm import launch as launch_module
from algobench.slurm.causes import explain_job_end
from algobench.slurm.executor import SubmititExecutor, _Followed
from algobench.slurm.jobs import _time_out_is_timeout
from algobench.slurm.launch import Launched, launch, triage
from algobench.slurm.profiles import ClusterProfile, load_profile
from algobench.slurm.reachable import check_cluster, slurm_unreachable_reason
from algobench.slurm.records import JOB_FILE, recorded_slurm_job
from algobench.slurm.status import experiment_status, format_status
from tests.conftest import REPO, SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
# Small jobs: the test cluster is one node with two cores, shared.
PROFILE = ClusterProfile(time_min=10, mem_gb=2, cpus=1, array_parallelism=2)
# A trial that ends by itself in a second, short of digits_mlp's target (the target's own winner
# reaches it after 550-3,400 steps): the jobs' mechanics, not the target, are under test.
SHORT_RUN_STEPS = 300


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip, with the reason, unless a SLURM cluster with accounting answers from here.

    CI sets ALGOBENCH_REQUIRE_SLURM=1 after starting its cluster: there, no cluster is a failure.
    """
    reason = slurm_unreachable_reason(timeout_sec=10)
    if reason and os.environ.get("ALGOBENCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"ALGOBENCH_REQUIRE_SLURM=1 but {reason}")
    if reason:
        pytest.skip(f"{reason}; CI starts one with slurm/cluster/up.sh and exports SLURM_CONF")


def specs_for(
    experiment: Path, workloads=("digits_mlp",), trials=2, submission=ADAMW, stop_on_target=True,
    max_steps: int | None = SHORT_RUN_STEPS,
):  # fmt: skip
    """The trials ``algobench slurm submit`` plans for these options, at the tiny scale, each
    ending after ``max_steps`` (None: at its target or its budget)."""
    argv = ["slurm", "submit", str(submission), "--workloads", ",".join(workloads), "--trials", str(trials),
            "--studies", "1", "--seed", "1", "--experiment-dir", str(experiment)]  # fmt: skip
    if not stop_on_target:
        argv.append("--no-stop-on-target")
    planned = plan_from_args(build_parser().parse_args(argv))
    return [replace(spec, scale="tiny", max_steps=max_steps) for spec in planned]


def eval_rows(trial_dir: Path) -> list[dict[str, str]]:
    with open(trial_dir / EVAL_FILE) as handle:
        return list(csv.DictReader(handle))


def wait_for_rows(trial_dir: Path, rows: int, timeout: float = 180) -> None:
    """Until the trial's eval log has more than ``rows`` rows (the job is running and training)."""
    deadline = time.monotonic() + timeout
    path = trial_dir / EVAL_FILE
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > rows:
            return
        time.sleep(0.5)
    raise AssertionError(f"{path} did not reach {rows} rows in {timeout} s")


def relative_files(experiment: Path) -> set[str]:
    """The results layout: every file but submitit's logs, the job record and the checkpoints
    (resume state: how many the runner keeps depends on how long the trial ran)."""
    return {
        p.relative_to(experiment).as_posix()
        for p in experiment.rglob("*")
        if p.is_file() and ".submitit" not in p.parts and p.name != JOB_FILE and not p.name.startswith(CHECKPOINT_FILE)
    }


# --- without a cluster ------------------------------------------------------------------------
def test_profile_loads_and_the_command_line_wins(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("partition: gpu\ntime_min: 90\nsetup: ['module load cuda']\nadditional: {qos: high}\n")
    profile = load_profile(path).with_overrides(time_min=15, partition=None)
    assert profile == ClusterProfile(partition="gpu", time_min=15, setup=("module load cuda",),
                                     additional={"qos": "high"})  # fmt: skip
    shipped = REPO / "slurm" / "profiles" / "example.yaml"
    assert load_profile(shipped) == load_profile("example")  # a shipped profile by its name
    assert load_profile("example").partition == "debug"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partiton: gpu\n", "unknown profile keys ['partiton']"),
        ("time_min: soon\n", "'time_min' must be an integer"),
        ("mem_gb: lots\n", "'mem_gb' must be a number of GB"),
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


def test_no_slurm_suggests_local(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(AlgobenchError, match="not on PATH.*use --cluster local"):
        check_cluster("slurm")
    code = main(["slurm", "submit", str(ADAMW), "--workloads", "digits_mlp", "--experiment-dir", str(tmp_path)])
    assert code != 0
    assert "use --cluster local" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing planned, nothing written


def test_unknown_cluster_is_refused():
    with pytest.raises(AlgobenchError, match="unknown cluster 'kubernetes'"):
        check_cluster("kubernetes")


@pytest.mark.parametrize(
    ("state", "error", "status", "words"),
    [
        ("CANCELLED by 0", "", "failed", "cancelled"),
        ("TIMEOUT", "", "timeout", "out of time"),
        ("OUT_OF_MEMORY", "", "failed", "out of memory"),
        (
            "FAILED",
            "slurmstepd: error: Exceeded job memory limit\nsrun: error: task 0: Killed",
            "failed",
            "out of memory",
        ),
        (
            "FAILED",
            "UncompletedJobError: Job not requeued because: timed-out too many times.",
            "timeout",
            "out of time",
        ),
        ("NODE_FAIL", "", "failed", "node failed"),
        ("FAILED", "Traceback\nImportError: no module named foo", "failed", "ImportError: no module named foo"),
    ],
)
def test_a_job_that_ends_without_a_summary_gets_its_cause(state, error, status, words):
    end = explain_job_end("12_3", state, error, time_min=10, mem_gb=2)
    assert end.status == status
    assert words in end.cause and "12_3" in end.cause


def test_a_time_out_raised_inside_the_trial_is_recorded_as_timeout(tmp_path):
    spec = specs_for(tmp_path, trials=1)[0]
    failed = {"status": "failed", "error": "UncompletedJobError: Job not requeued because: timed-out too many times."}
    summary = _time_out_is_timeout(spec, failed)
    assert summary["status"] == "timeout" and "out of time" in summary["error"]
    assert read_summary(spec.trial_dir())["status"] == "timeout"
    other = {"status": "failed", "error": "ValueError: nan"}
    assert _time_out_is_timeout(spec, other) is other


def test_status_shows_job_progress_and_cause_without_a_cluster(tmp_path):
    done, failed, unstarted = (tmp_path / "adamw" / "study_0" / "digits_mlp_pytorch" / f"trial_{j}" for j in (1, 2, 3))
    for trial_dir in (done, failed, unstarted):
        trial_dir.mkdir(parents=True)
    (done / EVAL_FILE).write_text(
        "global_step,score,validation/accuracy,validation/loss\n10,0.5,0.5,2.0\n42,1.0,0.97,0.1\n"
    )
    write_json(done / SUMMARY_FILE, {"status": "target_reached", "target_metric_name": "accuracy"})
    write_json(done / JOB_FILE, {"job_id": "777", "cluster": "local", "log_folder": str(tmp_path), "submitted": 0})
    write_json(failed / SUMMARY_FILE, {"status": "failed", "error": "job 8_1 CANCELLED by 0: cancelled\nmore"})
    rows = experiment_status(tmp_path)
    assert [(r.job_id, r.job_state, r.status, r.step, r.metric) for r in rows] == [
        ("777", "local", "target_reached", 42, "0.97"),
        ("-", "-", "failed", None, "-"),
        ("-", "-", "not started", None, "-"),
    ]
    text = format_status(rows)
    assert "cause: job 8_1 CANCELLED by 0: cancelled" in text and "more" not in text
    assert text.splitlines()[-1] == "1 failed, 1 not started, 1 target_reached"


def test_debug_cluster_runs_the_same_trials_in_this_process(tmp_path):
    launched = launch(specs_for(tmp_path, trials=1), cluster="debug", profile=PROFILE)
    assert [item.outcome for item in launched] == ["ok"]
    summary = read_summary(launched[0].spec.trial_dir())
    assert summary["status"] == "ok" and summary["steps"] == SHORT_RUN_STEPS
    assert json.loads((launched[0].spec.trial_dir() / JOB_FILE).read_text())["cluster"] == "debug"
    again = launch(specs_for(tmp_path, trials=1), cluster="debug", profile=PROFILE)
    assert again[0].job is None and again[0].outcome == "ok"  # finished: not run again


def test_local_cluster_from_the_command_line_then_status(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("algobench.slurm.executor.available_cores", lambda: 2)
    args = ["slurm", "submit", str(ADAMW), "--workloads", "digits_mlp", "--trials", "2", "--studies", "1",
            "--cluster", "local", "--cpus", "1", "--array-parallelism", "8",
            "--experiment-dir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "digits_mlp" in out and "2 trials on local" in err
    warning = [line for line in err.splitlines() if line.startswith("algobench: warning:")]
    assert len(warning) == 1 and "--array-parallelism 8" in warning[0] and "running 2 at once" in warning[0]
    trial_dirs = sorted(tmp_path.glob("adamw/study_0/*/trial_*"))
    assert len(trial_dirs) == 2
    statuses = Counter(read_summary(d)["status"] for d in trial_dirs)
    assert set(statuses) <= {"target_reached", "out_of_time"}, statuses  # finished: at the target or the budget
    assert all(read_summary(d)["threads"] == 1 for d in trial_dirs)  # the cores each trial had
    assert main(["slurm", "status", str(tmp_path)]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[-1] == ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    assert main(["slurm", "submit", "--no-wait", "--cluster", "local", str(ADAMW)]) != 0  # local jobs need waiting


@pytest.mark.parametrize(
    ("asked", "cpus", "cores", "parallel"),
    [(8, 1, 2, 2), (8, 1, 5, 5), (8, 2, 5, 2), (8, 4, 2, 1), (3, 1, 16, 3), (1, 1, 2, 1), (1, 4, 2, 1)],
)
def test_local_trials_share_the_cores_fairly(tmp_path, asked, cpus, cores, parallel):
    """Side by side, trials must not slow each other down: at most cores // cpus run at once."""
    profile = ClusterProfile(cpus=cpus, array_parallelism=asked)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        executor = SubmititExecutor("local", profile, folder=tmp_path, cores=cores)
    assert executor.parallelism == parallel
    messages = [str(warning.message) for warning in caught]
    if parallel < asked:
        assert len(messages) == 1
        assert f"--array-parallelism {asked}" in messages[0] and f"{cores} cores" in messages[0]
        assert f"running {parallel} at once" in messages[0]
    elif cpus > cores:  # one trial alone still has more threads than cores
        assert len(messages) == 1 and f"--cpus {cpus} is more than this machine's {cores} cores" in messages[0]
    else:
        assert not messages


def test_slurm_and_debug_parallelism(tmp_path):
    profile = ClusterProfile(cpus=64, array_parallelism=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: SLURM gives each job its cpus
        assert SubmititExecutor("slurm", profile, folder=tmp_path, cores=2).parallelism == 3
        assert SubmititExecutor("slurm", profile, folder=tmp_path, queued=10).parallelism == 13  # a planned sweep
        assert SubmititExecutor("debug", profile, folder=tmp_path).parallelism == 1
    with pytest.raises(AlgobenchError, match="unknown cluster 'kubernetes'"):
        SubmititExecutor("kubernetes", profile, folder=tmp_path)


@pytest.mark.parametrize("cluster", ["local", "debug"])
def test_submitit_executor_futures_resolve_to_the_summaries(tmp_path, cluster):
    specs = specs_for(tmp_path, trials=2)
    profile = ClusterProfile(time_min=10, mem_gb=2, cpus=1, array_parallelism=2)
    with SubmititExecutor(cluster, profile, folder=tmp_path / ".submitit", cores=2, poll_sec=0.5) as executor:
        futures = executor.submit_many(specs)
        summaries = [future.result(timeout=300) for future in futures]
        assert set(executor.jobs) == {spec.trial_dir() for spec in specs}
    assert summaries == [read_summary(spec.trial_dir()) for spec in specs]
    assert [(s["status"], s["steps"]) for s in summaries] == [("ok", SHORT_RUN_STEPS)] * 2
    assert [(s["study"], s["trial"], s["threads"]) for s in summaries] == [(0, 1, 1), (0, 2, 1)]
    assert all(json.loads((s.trial_dir() / JOB_FILE).read_text())["cluster"] == cluster for s in specs)


def test_a_local_job_that_dies_without_a_summary_is_recorded_failed(tmp_path, write_submission):
    dying = 'import os\nif os.environ.get("SUBMITIT_LOCAL_JOB_ID"):\n    os._exit(3)  # the job dies, no summary\n'
    search_space = (ADAMW.parent / "tuning_search_space.json").read_text()
    submission = write_submission(dying + ADAMW.read_text(), name="dying", search_space=search_space)
    specs = specs_for(tmp_path / "experiment", trials=1, submission=submission)
    launched = launch(specs, cluster="local", profile=PROFILE, poll_sec=0.5)
    summary = read_summary(specs[0].trial_dir())
    assert launched[0].outcome == summary["status"] == "failed"
    assert summary["error"].startswith(f"job {launched[0].job.job_id} ")
    again = launch(specs, cluster="local", profile=PROFILE, poll_sec=0.5)
    assert again[0].job is None and again[0].outcome == "failed"  # final: not rerun...
    retried = launch(specs, cluster="local", profile=PROFILE, retry_failed=True, poll_sec=0.5)
    assert retried[0].job is not None and retried[0].outcome == "failed"  # ...unless asked to


def test_the_wait_ends_at_the_wait_timeout_and_the_jobs_go_on(tmp_path, write_submission):
    slow = 'import os, time\ntime.sleep(60 if os.environ.get("SUBMITIT_LOCAL_JOB_ID") else 0)\n'
    search_space = (ADAMW.parent / "tuning_search_space.json").read_text()
    sleepy = write_submission(slow + ADAMW.read_text(), name="sleepy", search_space=search_space)
    specs = specs_for(tmp_path / "experiment", trials=2, submission=sleepy)
    profile = replace(PROFILE, array_parallelism=1)
    start = time.monotonic()
    launched = launch(specs, cluster="local", profile=profile, wait_timeout_sec=2, poll_sec=0.5)
    try:
        assert time.monotonic() - start < 30
        assert launched[0].job is not None and launched[0].outcome == "RUNNING"
        assert "still unfinished after the 2 s wait" in launched[0].cause
        assert launched[1].job is None and launched[1].outcome == "NOT SUBMITTED"
        assert "not submitted after the 2 s wait" in launched[1].cause
        assert all(read_summary(spec.trial_dir()) is None for spec in specs)  # nothing final written
    finally:
        launched[0].job.cancel()


def recorded_job_trial(experiment: Path, job_id: str = "4242"):
    """A planned trial whose SLURM job was recorded by an earlier command (no summary yet)."""
    spec = specs_for(experiment, trials=1)[0]
    spec.trial_dir().mkdir(parents=True)
    record = {"job_id": job_id, "cluster": "slurm", "log_folder": str(experiment), "submitted": time.time()}
    write_json(spec.trial_dir() / JOB_FILE, record)
    return spec


@pytest.mark.parametrize(("second_look", "attached"), [("PENDING", True), ("CANCELLED by 0", False)])
def test_an_end_without_a_summary_is_asked_again_before_it_is_recorded(tmp_path, monkeypatch, second_look, attached):
    """A job between two attempts (requeued) may look ended to sacct: triage asks once more, and
    records the end only if sacct says it again."""
    spec = recorded_job_trial(tmp_path)
    answers, asked = iter([{"4242": "CANCELLED by 0"}, {"4242": second_look}]), []
    monkeypatch.setattr(launch_module, "job_states", lambda ids: asked.append(list(ids)) or next(answers))
    monkeypatch.setattr(launch_module, "END_CONFIRM_SEC", 0.0)
    monkeypatch.setattr(launch_module.shutil, "which", lambda name: f"/usr/bin/{name}")  # sacct "installed"
    on, new = triage([Launched(spec)], "slurm", PROFILE, retry_failed=False, grace_sec=180)
    assert asked == [["4242"], ["4242"]] and not new
    if attached:
        assert [item.spec for item in on] == [spec] and read_summary(spec.trial_dir()) is None
    else:
        summary = read_summary(spec.trial_dir())
        assert not on and summary["status"] == "failed" and "CANCELLED" in summary["error"]


class ScriptedAccounting:
    """sacct's answers to the executor's polls, one state per poll."""

    def __init__(self, states):
        self.states, self.state = iter(states), None

    def register_job(self, job_id):
        pass

    def update(self):
        self.state = next(self.states)

    def is_done(self, job_id, mode):
        return self.state not in ("PENDING", "RUNNING", "REQUEUED")

    def get_state(self, job_id, mode):
        return self.state


def test_a_followed_job_ends_only_when_sacct_says_so_twice(tmp_path, monkeypatch):
    spec = recorded_job_trial(tmp_path)
    executor = SubmititExecutor("slurm", PROFILE, folder=tmp_path, cores=2)
    executor._accounting = ScriptedAccounting(["CANCELLED", "PENDING", "CANCELLED", "CANCELLED"])
    monkeypatch.setattr(executor_module, "END_CONFIRM_SEC", 0.2)
    followed = [_Followed(spec, recorded_slurm_job(spec.trial_dir()), None, time.time())]
    assert executor._ended(followed) == []  # first sighting
    assert executor._ended(followed) == []  # active again: requeued
    assert executor._ended(followed) == []  # a new first sighting
    time.sleep(0.25)
    assert executor._ended(followed) == [(followed[0], None)]
    assert executor._ends_seen == {}  # nothing kept for a job that has ended


# --- on a real cluster ------------------------------------------------------------------------
@pytest.mark.slurm
def test_sweep_of_two_workloads_and_two_trials_is_scoreable(slurm_cluster, tmp_path):
    from algobench.scoring import score

    specs = specs_for(tmp_path, workloads=("digits_mlp", "mnist1d"), max_steps=None)
    launched = launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=600, poll_sec=1)
    assert all(item.outcome in ("target_reached", "out_of_time") for item in launched), [
        (i.spec.trial_dir(), i.cause) for i in launched
    ]
    assert len({item.job.job_id.split("_")[0] for item in launched}) == 1  # one job array
    result = score([tmp_path])
    assert list(result.scores.index) == ["adamw"]
    # One submission: its score is the share of workloads on which a trial reached the target.
    reached = {item.spec.workload_name for item in launched if item.outcome == "target_reached"}
    assert result.scores.loc["adamw", "score"] == pytest.approx(len(reached) / 2)
    deadline = time.monotonic() + 60  # sacct may say RUNNING a moment after the trial wrote its results
    status = experiment_status(tmp_path)
    while [s.job_state for s in status] != ["COMPLETED"] * 4:
        assert time.monotonic() < deadline, status
        time.sleep(1)
        status = experiment_status(tmp_path)
    assert all(s.step and s.step > 0 and s.metric != "-" for s in status)
    again = launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=60)
    assert all(item.job is None for item in again)  # resubmitting a finished experiment submits nothing


@pytest.mark.slurm
def test_cancelled_job_is_failed_and_retry_failed_reruns_only_it(slurm_cluster, tmp_path):
    specs = specs_for(tmp_path, stop_on_target=False, max_steps=None)
    first = launch(specs, cluster="slurm", profile=PROFILE, wait=False)
    wait_for_rows(specs[0].trial_dir(), 1)
    subprocess.run(["scancel", first[0].job.job_id], check=True, timeout=30)
    settled = launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=300, poll_sec=1)
    # Recorded, not resubmitted: either triage found it ended, or (while SLURM's accounting still
    # showed the cancel in progress) the same job was followed to its end.
    assert settled[0].job is None or settled[0].job.job_id == first[0].job.job_id
    assert settled[0].outcome == "failed"
    assert settled[1].job.job_id == first[1].job.job_id  # still running: attached, not resubmitted
    cancelled = read_summary(specs[0].trial_dir())
    assert cancelled["status"] == "failed" and "CANCELLED" in cancelled["error"] and "cancelled" in cancelled["error"]
    assert read_summary(specs[1].trial_dir())["status"] in ("target_reached", "out_of_time")
    other_job = (specs[1].trial_dir() / JOB_FILE).read_text()
    failed_status = [s for s in experiment_status(tmp_path) if s.status == "failed"]
    assert len(failed_status) == 1 and "CANCELLED" in failed_status[0].cause

    retried = launch(specs, cluster="slurm", profile=PROFILE, retry_failed=True, wait_timeout_sec=300, poll_sec=1)
    assert retried[1].job is None and retried[0].job is not None
    assert retried[0].job.job_id != first[0].job.job_id
    assert read_summary(specs[0].trial_dir())["status"] in ("target_reached", "out_of_time")
    assert (specs[1].trial_dir() / JOB_FILE).read_text() == other_job


@pytest.mark.slurm
def test_interrupted_job_is_requeued_and_resumes_without_lost_or_duplicated_rows(slurm_cluster, tmp_path):
    specs = specs_for(tmp_path, trials=1, stop_on_target=False, max_steps=None)
    trial_dir = specs[0].trial_dir()
    first = launch(specs, cluster="slurm", profile=PROFILE, wait=False)
    wait_for_rows(trial_dir, 2)
    first[0].job._interrupt()  # preemption: SIGTERM then USR2, as SLURM sends them
    again = launch(specs, cluster="slurm", profile=PROFILE, wait_timeout_sec=400, poll_sec=1)
    assert again[0].job.job_id == first[0].job.job_id  # the same job, requeued: not resubmitted
    summary = read_summary(trial_dir)
    assert summary["status"] in ("target_reached", "out_of_time"), summary.get("error")
    assert summary["preemption_count"] >= 1
    rows = eval_rows(trial_dir)
    steps = [int(r["global_step"]) for r in rows]
    assert steps == sorted(set(steps))  # increasing: no duplicated or reordered evaluations
    assert {int(r["preemption_count"]) for r in rows} >= {0, 1}  # rows from before and after the requeue
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores) and len(rows) == summary["num_evals"]


@pytest.mark.slurm
def test_local_cluster_gives_the_same_layout_as_slurm(slurm_cluster, tmp_path):
    for name in ("slurm", "local"):
        launched = launch(specs_for(tmp_path / name, trials=1), cluster=name, profile=PROFILE,
                          wait_timeout_sec=300, poll_sec=1)  # fmt: skip
        assert launched[0].outcome == "ok"
    assert relative_files(tmp_path / "slurm") == relative_files(tmp_path / "local")
    assert "adamw/study_0/digits_mlp_pytorch/trial_1/summary.json" in relative_files(tmp_path / "local")


@pytest.mark.slurm
def test_unknown_partition_names_the_known_ones(slurm_cluster, tmp_path):
    profile = ClusterProfile(partition="no_such_partition")
    with pytest.raises(AlgobenchError, match=r"unknown SLURM partition 'no_such_partition'; this cluster has: \w+"):
        launch(specs_for(tmp_path, trials=1), cluster="slurm", profile=profile)
    assert not tmp_path.joinpath("adamw").exists()


@pytest.mark.slurm
def test_job_out_of_memory_is_failed_with_its_cause(slurm_cluster, tmp_path):
    specs = specs_for(tmp_path, trials=1)
    small = ClusterProfile(time_min=5, mem_gb=0.2, cpus=1)  # less than python + torch
    launched = launch(specs, cluster="slurm", profile=small, wait_timeout_sec=120, poll_sec=1)
    assert launched[0].outcome == "failed"
    assert "out of memory" in read_summary(specs[0].trial_dir())["error"]


@pytest.mark.slurm
def test_job_out_of_time_is_timeout_with_its_cause(slurm_cluster, tmp_path, write_submission):
    source = ADAMW.read_text()
    slow = 'import os, time\ntime.sleep(200 if os.environ.get("SLURM_JOB_ID") else 0)  # outlasts a 1-minute job\n'
    search_space = (ADAMW.parent / "tuning_search_space.json").read_text()
    sleepy = write_submission(slow + source, name="sleepy", search_space=search_space)
    specs = specs_for(tmp_path / "experiment", trials=1, submission=sleepy)
    one_minute = ClusterProfile(time_min=1, mem_gb=2, cpus=1, timeout_requeues=0)
    launched = launch(specs, cluster="slurm", profile=one_minute, wait_timeout_sec=240, poll_sec=1)
    assert launched[0].outcome == "timeout", launched[0].cause
    assert "time" in read_summary(specs[0].trial_dir())["error"]


@pytest.mark.slurm
def test_a_job_sacct_never_knows_is_given_up_not_waited_for(slurm_cluster, tmp_path):
    spec = specs_for(tmp_path, trials=1)[0]
    spec.trial_dir().mkdir(parents=True)
    record = {"job_id": "987654321", "cluster": "slurm", "log_folder": str(tmp_path), "submitted": time.time()}
    write_json(spec.trial_dir() / JOB_FILE, record)
    start = time.monotonic()
    launched = launch([spec], cluster="slurm", profile=PROFILE, unknown_grace_sec=3, poll_sec=1)
    assert time.monotonic() - start < 60
    assert launched[0].outcome == "failed" and "accounting" in launched[0].cause
