"""``--executor ray`` against a real Ray: the same eval logs as the child-process executor for the
same seeds and step schedule, finished trials skipped, a killed worker's trial resumed from its
checkpoint, and Ray never imported by commands that do not ask for it."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from algobench.cli import build_parser, plan_from_args, preload_modules
from algobench.tuning.driver import drive_specs
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"
TIMING = ("score", "total_duration", "preemption_count")  # and every *_time column
PRELOAD = preload_modules(["digits_mlp"])  # what `algobench submit` preloads for this workload


def specs_for(experiment: Path, trials: int = 2, max_steps: int = 40) -> list:
    """The trials ``algobench submit`` plans, at the tiny scale on a step schedule."""
    argv = ["submit", str(ADAMW), "--workloads", "digits_mlp", "--trials", str(trials), "--studies", "1",
            "--seed", "3", "--experiment-dir", str(experiment), "--threads", "1"]  # fmt: skip
    planned = plan_from_args(build_parser().parse_args(argv))
    return [replace(s, scale="tiny", max_steps=max_steps, eval_every_steps=10, stop_on_target=False) for s in planned]


def metric_rows(trial_dir: Path) -> list[dict[str, str]]:
    with open(trial_dir / "eval_measurements.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if k not in TIMING and not k.endswith("_time")} for row in rows]


@pytest.mark.ray
def test_a_sweep_on_ray_logs_what_the_process_executor_logs(ray_cluster, tmp_path):
    from algobench.executors.process import ProcessExecutor
    from algobench.executors.ray_executor import RayExecutor

    on_ray, local = specs_for(tmp_path / "ray"), specs_for(tmp_path / "process")
    with RayExecutor(parallel=2, preload=PRELOAD) as executor:
        assert executor.parallelism == 2
        ray_results = drive_specs(on_ray, executor)
    with ProcessExecutor(parallel=1, preload=PRELOAD) as executor:
        drive_specs(local, executor)
    assert len(ray_results) == 2 and all(summary is not None for _, summary in ray_results)
    for a, b in zip(on_ray, local, strict=True):
        rows = metric_rows(a.trial_dir())
        assert [int(r["global_step"]) for r in rows] == [10, 20, 30, 40]
        assert rows == metric_rows(b.trial_dir())  # same seeds, same steps: the same numbers
        assert (a.trial_dir() / "summary.json").exists() and (a.trial_dir() / "meta_data.json").exists()
    # A rerun skips finished trials: nothing is sent to Ray, the summaries come back as they are.
    written = {s.trial: (s.trial_dir() / "summary.json").stat().st_mtime_ns for s in on_ray}
    with RayExecutor(parallel=2, preload=PRELOAD) as executor:
        again = drive_specs(on_ray, executor)
    assert {spec.trial: summary for spec, summary in again} == {spec.trial: summary for spec, summary in ray_results}
    assert {s.trial: (s.trial_dir() / "summary.json").stat().st_mtime_ns for s in on_ray} == written


def _ray_worker_running_a_trial(trial_dir: Path, timeout: float = 120.0) -> int:
    """The Ray worker executing the (only) trial task, once the trial has written a checkpoint:
    Ray names a busy worker's process after its task (``ray::algobench trial ...``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (trial_dir / "checkpoint.pt").exists():
            for entry in os.listdir("/proc"):
                try:
                    if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes().startswith(
                        b"ray::algobench trial"
                    ):
                        return int(entry)
                except OSError:
                    continue
        time.sleep(0.05)
    raise AssertionError(f"no Ray worker found running {trial_dir}")


@pytest.mark.ray
@pytest.mark.slow  # two 300-step trials and a worker restart: about a minute here
def test_a_killed_workers_trial_resumes_from_its_checkpoint(ray_cluster, tmp_path):
    from algobench.executors.process import ProcessExecutor
    from algobench.executors.ray_executor import RayExecutor

    spec = specs_for(tmp_path / "ray", trials=1, max_steps=300)[0]
    reference = specs_for(tmp_path / "process", trials=1, max_steps=300)[0]
    with RayExecutor(parallel=1, preload=PRELOAD) as executor:
        future = executor.submit(spec)
        os.kill(_ray_worker_running_a_trial(spec.trial_dir()), signal.SIGKILL)
        summary = future.result(timeout=300)
    assert summary["steps"] == 300 and summary["preemption_count"] >= 1, summary
    with ProcessExecutor(parallel=1, preload=PRELOAD) as executor:
        executor.submit(reference).result()
    rows = metric_rows(spec.trial_dir())
    assert [int(r["global_step"]) for r in rows] == list(range(10, 301, 10))  # nothing lost, nothing twice
    assert rows == metric_rows(reference.trial_dir())  # resumed exactly where the checkpoint stood


@pytest.mark.ray
def test_an_unreachable_cluster_is_one_line(tmp_path):
    pytest.importorskip("ray")
    code = (
        "from algobench.cli import main\n"
        f"raise SystemExit(main(['submit', {str(ADAMW)!r}, '--executor', 'ray', '--ray-address', '127.0.0.1:9',"
        f" '--workloads', 'digits_mlp', '--trials', '1', '--studies', '1', '--experiment-dir', {str(tmp_path)!r}]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "algobench: error: --ray-address 127.0.0.1:9: no Ray cluster answers there" in done.stderr


def test_ray_is_imported_only_when_asked_for(tmp_path, write_submission):
    # A submission that fails at once: the whole of `submit` runs (plan, executor, trial process,
    # table) without minutes of training.
    broken = write_submission(
        """
        def make_optimizer(params, hyperparameters, workload):
            raise ValueError("no optimizer today")
        """,
        search_space='{"learning_rate": {"feasible_points": [0.001]}}',
    )
    code = (
        "import sys\n"
        "from algobench.cli import build_parser, main\n"
        "build_parser().format_help()\n"
        "from algobench.tuning.tuners import tuner_class\n"
        "tuner_class('pb2')\n"
        f"assert main(['submit', {str(broken)!r}, '--workloads', 'digits_mlp', '--scale', 'tiny', '--trials', '1',"
        f" '--studies', '1', '--quiet', '--experiment-dir', {str(tmp_path / 'exp')!r}]) == 1\n"
        "loaded = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))\n"
        "assert not loaded, loaded[:5]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = next((tmp_path / "exp").glob("*/study_0/digits_mlp_pytorch/trial_1/summary.json")).read_text()
    assert "no optimizer today" in summary  # submit did run the trial
