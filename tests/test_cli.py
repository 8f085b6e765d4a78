"""``algobench submit`` end to end on the small workload, and its bad paths."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from algobench.cli import main
from algobench.tuning.halton import sample
from algobench.tuning.search_space import load_search_space
from tests.conftest import SUBMISSIONS

ADAMW = SUBMISSIONS / "adamw" / "submission.py"


def submit(*args: str) -> int:
    """``algobench submit`` at the tiny scale, one thread per trial (seconds per trial, and no two
    threads fighting over a core busy with other tests), each trial in its own process."""
    return main(["submit", *args, "--quiet", "--scale", "tiny", "--threads", "1"])


def flat_hparams(trial_dir) -> dict:
    return {k: v for k, v in json.loads((trial_dir / "hparams.json").read_text()).items() if k != "schedule"}


def trial_dirs(experiment, submission="adamw", workload="digits_mlp"):
    return sorted(experiment.glob(f"{submission}/study_*/{workload}_pytorch/trial_*"))


def test_submit_runs_every_trial_writes_the_layout_and_prints_the_table(tmp_path, capsys):
    experiment = tmp_path / "exp"
    rc = submit(str(ADAMW), "--workloads", "digits_mlp", "--trials", "2", "--studies", "2",
                "--experiment-dir", str(experiment), "--seed", "3")  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["workload", "time", "to"]
    assert "digits_mlp" in out and f"results: {experiment}" in out

    dirs = trial_dirs(experiment)
    assert [d.relative_to(experiment).as_posix() for d in dirs] == [
        "adamw/study_0/digits_mlp_pytorch/trial_1",
        "adamw/study_0/digits_mlp_pytorch/trial_2",
        "adamw/study_1/digits_mlp_pytorch/trial_1",
        "adamw/study_1/digits_mlp_pytorch/trial_2",
    ]
    for d in dirs:
        assert {p.name for p in d.iterdir()} >= {
            "eval_measurements.csv", "hparams.json", "meta_data.json", "summary.json", "checkpoint.pt",
        }  # fmt: skip
        summary = json.loads((d / "summary.json").read_text())
        assert summary["status"] in ("target_reached", "out_of_time"), summary.get("error")
        assert summary["workload"] == "digits_mlp"
    # Hyperparameters are the seeded Halton points of each study.
    from algobench.seeds import derive_seed

    space = load_search_space(SUBMISSIONS / "adamw" / "tuning_search_space.json")
    expected = sample(space, 2, derive_seed(3, 1))
    assert flat_hparams(dirs[3]) == pytest.approx(expected[1])
    schedule = json.loads((dirs[3] / "hparams.json").read_text())["schedule"]
    assert len(schedule) == 1 and schedule[0]["global_step"] == 0  # a fixed trial: one entry
    assert schedule[0]["hyperparameters"] == pytest.approx(expected[1])


def test_rerun_skips_finished_trials(tmp_path, capsys):
    args = (str(ADAMW), "--workloads", "digits_mlp", "--trials", "1", "--studies", "1",
            "--experiment-dir", str(tmp_path))  # fmt: skip
    assert submit(*args) == 0
    first = capsys.readouterr().out
    summary = trial_dirs(tmp_path)[0] / "summary.json"
    written = summary.stat().st_mtime_ns
    assert submit(*args) == 0
    assert summary.stat().st_mtime_ns == written
    assert capsys.readouterr().out == first


def test_self_tuning_runs_one_trial_per_study_with_one_and_a_half_budget(tmp_path):
    assert submit(str(SUBMISSIONS / "nadamw" / "submission.py"), "--workloads", "digits_mlp",
                  "--ruleset", "self", "--studies", "2", "--experiment-dir", str(tmp_path)) == 0  # fmt: skip
    dirs = trial_dirs(tmp_path, "nadamw")
    assert [d.name for d in dirs] == ["trial_1", "trial_1"]
    summary = json.loads((dirs[0] / "summary.json").read_text())
    from algobench.workloads import get_workload

    assert summary["max_allowed_runtime_sec"] == 1.5 * get_workload("digits_mlp").max_allowed_runtime_sec
    assert flat_hparams(dirs[0]) == {}


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, write_submission, capsys):
    path = write_submission(
        """
        import torch

        def make_optimizer(params, hyperparameters, workload):
            if hyperparameters.explode:
                raise RuntimeError("this configuration cannot build an optimizer")
            return torch.optim.Adam(params, lr=hyperparameters.learning_rate)
        """,
        search_space=json.dumps([{"explode": True, "learning_rate": 1e-3}, {"explode": False, "learning_rate": 3e-3}]),
    )
    assert submit(str(path), "--workloads", "digits_mlp", "--trials", "2", "--studies", "1",
                  "--experiment-dir", str(tmp_path / "exp")) == 0  # fmt: skip
    dirs = trial_dirs(tmp_path / "exp", "custom")
    failed = json.loads((dirs[0] / "summary.json").read_text())
    assert failed["status"] == "failed"
    assert "RuntimeError: this configuration cannot build an optimizer" in failed["error"]
    ran = json.loads((dirs[1] / "summary.json").read_text())
    assert ran["status"] == "target_reached"
    assert "study 0 trial 1: failed: setting up the trial raised RuntimeError" in capsys.readouterr().err


def test_a_hang_is_a_timeout_and_no_result_means_exit_1(tmp_path, write_submission, capsys):
    path = write_submission(
        """
        import time
        import torch

        def make_optimizer(params, hyperparameters, workload):
            time.sleep(600)
        """,
        search_space=json.dumps([{"learning_rate": 1e-3}]),
    )
    assert submit(str(path), "--workloads", "digits_mlp", "--trials", "1", "--studies", "1",
                  "--experiment-dir", str(tmp_path), "--trial-timeout", "8") == 1  # fmt: skip
    summary = json.loads((trial_dirs(tmp_path, "custom")[0] / "summary.json").read_text())
    assert summary["status"] == "timeout"
    assert "killed after 8 s" in summary["error"]
    err = capsys.readouterr().err
    assert "no trial produced a result (0 failed, 1 timeout, 0 invalid, 0 not finished)" in err
    assert "Traceback" not in err


def test_a_folder_with_a_submission_file_is_taken_for_the_file(tmp_path, capsys):
    assert submit(str(ADAMW.parent), "--workloads", "digits_mlp", "--trials", "1", "--studies", "1",
                  "--experiment-dir", str(tmp_path)) == 0  # fmt: skip
    assert len(trial_dirs(tmp_path)) == 1
    assert submit(str(tmp_path), "--experiment-dir", str(tmp_path / "x")) == 2
    assert "is a folder with no submission.py in it" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workloads", "digitz"], "unknown workload 'digitz'. Did you mean digits_mlp?"),
        (["--trials", "0"], "--studies and --trials must be at least 1"),
        (["--search-space", "/nonexistent/space.json"], "search space: /nonexistent/space.json not found"),
    ],
)
def test_bad_selection_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    rc = submit(str(ADAMW), "--experiment-dir", str(tmp_path), *args)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("algobench: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_broken_submission_file_is_one_line_with_file_and_line(tmp_path, write_submission, capsys):
    path = write_submission("def make_optimizer(params, hyperparameters, workload):\n    return (\n")
    assert submit(str(path), "--experiment-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: syntax error" in err
    assert "Traceback" not in err


def test_malformed_search_space_names_the_file(tmp_path, write_submission, capsys):
    path = write_submission(
        "import torch\n"
        "def make_optimizer(params, hyperparameters, workload):\n"
        "    return torch.optim.SGD(params, 0.1)\n",
        search_space='{"learning_rate": {"min": 1, "max": 0.1}}',
    )
    assert submit(str(path), "--experiment-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "tuning_search_space.json: parameter 'learning_rate': needs finite min <= max" in err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="unknown workload"):
        main(["--debug", "submit", str(ADAMW), "--workloads", "nope", "--experiment-dir", str(tmp_path)])


def test_help_describes_the_commands(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["submit", "--help"])
    assert exited.value.code == 0
    assert "--ruleset {external,transfer,self}" in capsys.readouterr().out


def _trial_processes(trial_dir: Path) -> list[str]:
    """The pids of the trial's processes (Linux): those writing their output to the trial's
    ``output.log`` (the trial process and what inherits its stdout), and those an exec gave the
    trial's environment marker (the trial process's own ``/proc`` environ is the fork server's)."""
    from algobench.executors.process import OUTPUT_FILE, TRIAL_MARKER

    output, marker = str(trial_dir / OUTPUT_FILE), f"\0{TRIAL_MARKER}={trial_dir}\0".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if os.readlink(proc / "fd" / "1") == output or marker in b"\0" + (proc / "environ").read_bytes():
                found.append(proc.name)
    return found


def _start_submit(experiment: Path, scale: str = "tiny"):
    """``algobench submit`` of one long tiny trial in a child process; returns it, its command and
    the trial's eval log, once three evaluations are written."""
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "algobench.cli", "submit", str(ADAMW), "--workloads", "digits_mlp",
               "--trials", "1", "--studies", "1", "--experiment-dir", str(experiment), "--quiet",
               "--no-stop-on-target", "--scale", scale, "--threads", "1"]  # fmt: skip
    # A shell that starts a job in the background (`... &`, as CI runners may) makes it ignore
    # SIGINT, and Python keeps an ignored SIGINT ignored: give the child the default, as a terminal would.
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    eval_file = experiment / "adamw/study_0/digits_mlp_pytorch/trial_1/eval_measurements.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (eval_file.exists() and len(eval_file.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    return process, command, eval_file


def test_a_killed_algobench_takes_its_trial_processes_with_it(tmp_path):
    """SIGKILL cannot be caught: the trial process (a child of the fork server, which outlives
    algobench while a trial runs) must notice by itself and end."""
    import signal
    import time

    process, _, eval_file = _start_submit(tmp_path / "exp", scale="cpu")  # a trial of a minute or so
    assert _trial_processes(eval_file.parent), "the trial must be running when algobench is killed"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    deadline = time.monotonic() + 5
    while _trial_processes(eval_file.parent) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _trial_processes(eval_file.parent), "trial processes outlived a killed algobench"


@pytest.mark.slow  # the resumed trial runs its whole budget: 45 s on a loaded machine
@pytest.mark.parametrize(("stop", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_keeps_what_was_written_and_the_same_command_resumes(tmp_path, stop, code):
    """Ctrl-C, and SIGTERM (kill, scancel) alike: trial processes end with algobench, the
    checkpoint is kept, the same command resumes."""
    import signal
    import subprocess

    process, command, eval_file = _start_submit(tmp_path / "exp")
    process.send_signal(getattr(signal, stop))
    _, err = process.communicate(timeout=60)
    assert process.returncode == code
    assert "interrupted; finished trials and checkpoints are kept" in err
    assert not _trial_processes(eval_file.parent), "trial processes left running"
    rows_before = eval_file.read_text().splitlines()
    assert len(rows_before) >= 3 and not (eval_file.parent / "summary.json").exists()

    assert subprocess.run(command, capture_output=True, text=True, timeout=300).returncode == 0
    summary = json.loads((eval_file.parent / "summary.json").read_text())
    assert summary["status"] in ("target_reached", "out_of_time") and summary["preemption_count"] == 1
    rows_after = eval_file.read_text().splitlines()
    steps = [int(line.split(",")[0]) for line in rows_after[1:]]
    assert steps == sorted(set(steps))  # no duplicated evaluation


@pytest.mark.parametrize("content", [b"\x8f\x00\xffrandom bytes", b"[]"], ids=["random_bytes", "a_list"])
def test_a_damaged_summary_is_set_aside_and_its_trial_runs_again(tmp_path, capsys, content):
    """D3: one line naming the file; nothing else is touched; the trial gets a real summary."""
    args = (str(ADAMW), "--workloads", "digits_mlp", "--trials", "1", "--studies", "1",
            "--experiment-dir", str(tmp_path))  # fmt: skip
    assert submit(*args) == 0
    summary = trial_dirs(tmp_path)[0] / "summary.json"
    summary.write_bytes(content)
    capsys.readouterr()
    assert submit(*args) == 0
    err = capsys.readouterr().err
    assert f"{summary}" in err and "moved to summary.json.corrupt, the trial will run again" in err
    assert "Traceback" not in err
    assert (summary.parent / "summary.json.corrupt").read_bytes() == content
    assert json.loads(summary.read_text())["status"] in ("target_reached", "out_of_time")
