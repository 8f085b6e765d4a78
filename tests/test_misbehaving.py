"""The misbehaving-submission corpus (tests/misbehaving/, listed in its README.md).

Each file misbehaves on digits_mlp only and trains normally elsewhere. One sweep per file runs it
on digits_mlp and mnist1d, each trial in its own child process. Whatever the submission does,
the sweep exits 0, the digits_mlp trial ends as a recorded outcome with a one-line cause, no
traceback reaches the terminal, the mnist1d trial completes, and no tampering trial is scored.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from algobench.cli import main

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "misbehaving"
TARGETS = REPO / "workloads" / "targets"
COMPLETED = frozenset({"ok", "target_reached", "out_of_time"})
MAX_ERROR_CHARS = 2000  # a one-line cause, not a dump


@dataclass
class Sweep:
    """One finished `algobench submit` of a corpus file on digits_mlp and mnist1d."""

    file: Path
    returncode: int
    output: str  # the terminal: stdout and stderr together
    experiment_dir: Path
    cwd: Path  # the command's working directory
    pid_file: Path  # $MISBEHAVING_PID_FILE, where process-leaving submissions note their pids
    elapsed: float

    def trial_dir(self, workload: str) -> Path:
        found = sorted(self.experiment_dir.glob(f"*/study_0/{workload}_pytorch/trial_*"))
        assert len(found) == 1, f"expected one {workload} trial in {self.experiment_dir}, found {found}"
        return found[0]

    def summary(self, workload: str) -> dict[str, Any]:
        path = self.trial_dir(workload) / "summary.json"
        assert path.is_file(), f"no summary.json for {workload}; terminal:\n{self.output[-3000:]}"
        return json.loads(path.read_text())

    def eval_rows(self, workload: str) -> list[dict[str, float]]:
        path = self.trial_dir(workload) / "eval_measurements.csv"
        if not path.is_file():
            return []
        with path.open(newline="") as file:
            return [
                {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
                for row in csv.DictReader(file)
            ]


@dataclass(frozen=True)
class Case:
    file: str
    statuses: frozenset[str]  # the digits_mlp trial's status is one of these
    phrases: tuple[str, ...] = ()  # regexes its one-line error must each match (case-insensitive)
    trial_timeout: int = 30
    check: Callable[[Sweep], None] | None = None  # further assertions
    slow: bool = False  # a variant of another case: run with `pytest -m slow`
    # A file that tampers when it is imported tampers in every trial it runs in: then the other
    # trial is invalid too (never scored), and with no result the command exits 1.
    tampers_at_import: bool = False

    @property
    def id(self) -> str:
        return self.file.removesuffix(".py")


# --- the further checks -----------------------------------------------------------------------


def validation_target(workload: str) -> float:
    """From the targets file, never from a workload object a submission could have touched."""
    return float(json.loads((TARGETS / f"{workload}.json").read_text())["validation_target_value"])


def first_hit(sweep: Sweep, workload: str = "digits_mlp") -> float | None:
    """The submission time of the first evaluation at or past the target (accuracy: higher is better)."""
    target, budget = validation_target(workload), sweep.summary(workload).get("max_allowed_runtime_sec")
    for row in sweep.eval_rows(workload):
        value = row.get("validation/accuracy", math.nan)
        if value >= target and (budget is None or row["score"] <= budget):
            return row["score"]
    return None


def scored_time(sweep: Sweep, workload: str = "digits_mlp") -> float:
    """What `algobench score` makes of the trial: its time-to-target, inf when not scored."""
    from algobench.scoring import score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = score([sweep.experiment_dir])
    rows = result.trials.loc[result.trials["workload"] == workload, "time_to_target"]
    return float(rows.min()) if len(rows) else math.inf


def assert_not_scored(sweep: Sweep) -> None:
    assert scored_time(sweep) == math.inf, "a tampering trial was scored"


def check_runner_clock_unaffected(sweep: Sweep) -> None:
    """time.perf_counter & co. patched to 0: the runner's own timers must not have noticed."""
    summary = sweep.summary("digits_mlp")
    submission, total = summary.get("submission_time"), summary.get("total_duration")
    assert submission is not None and total is not None, summary
    assert 0 < submission <= total, f"submission_time {submission}, total_duration {total}"
    scores = [row["score"] for row in sweep.eval_rows("digits_mlp")]
    assert scores, "no evaluation was logged"
    assert all(0 < s <= total for s in scores), scores
    assert scores == sorted(scores), f"submission time went backwards: {scores}"


def check_clock_tampering(sweep: Sweep) -> None:
    """algobench's own clock slowed twentyfold: invalid and unscored, or (if the patch could not
    reach the runner's timers) honest times: submission time close to the process CPU time the
    runner recorded alongside it, which the patch left alone."""
    summary = sweep.summary("digits_mlp")
    if summary["status"] == "invalid":
        assert summary.get("error"), "an invalid trial says why"
        assert_not_scored(sweep)
        return
    submission, cpu = summary.get("submission_time"), summary.get("process_cpu_time")
    assert submission is not None and cpu is not None, summary
    # cpu time is at most (threads x wall time); on this scale, within a factor of a few of it
    assert submission >= cpu / 8, (
        f"status {summary['status']!r}, yet the trial reports {submission:.3f} s of submission time "
        f"for {cpu:.3f} s of process CPU time: the slowed clock went unnoticed"
    )


def check_target_from_file(sweep: Sweep) -> None:
    """The workload's target patched: time_to_target is the first honest hit by the targets file."""
    summary = sweep.summary("digits_mlp")
    expected, recorded = first_hit(sweep), summary.get("time_to_target")
    rows = sweep.eval_rows("digits_mlp")
    assert rows, "no evaluation was logged"
    if summary["status"] == "invalid" and recorded is None:
        assert_not_scored(sweep)
        return
    if expected is None:
        assert recorded is None, f"time_to_target {recorded}, but no evaluation reached the target"
        assert summary["status"] != "target_reached"
    else:
        assert recorded == pytest.approx(expected), f"time_to_target {recorded}, first real hit {expected}"
    assert scored_time(sweep) == (math.inf if expected is None else pytest.approx(expected))


def check_eval_not_forged(sweep: Sweep) -> None:
    """The evaluation forged (loss 0, accuracy 1): invalid, or the forged rows never logged."""
    summary = sweep.summary("digits_mlp")
    if summary["status"] == "invalid":
        assert_not_scored(sweep)
        return
    rows = sweep.eval_rows("digits_mlp")
    assert rows, "no evaluation was logged"
    forged = [r for r in rows if r.get("validation/loss") == 0.0 and r.get("validation/accuracy") == 1.0]
    assert not forged, f"the submission's own eval_model was trusted: {len(forged)} forged rows logged"


def check_forged_summary(sweep: Sweep) -> None:
    summary = sweep.summary("digits_mlp")
    assert summary.get("time_to_target") != 0.001, "the submission's forged summary.json was kept"
    assert_not_scored(sweep)


def check_relative_write(sweep: Sweep) -> None:
    assert (sweep.trial_dir("digits_mlp") / "relative_write.txt").is_file(), "the file is not in the trial directory"
    assert not (sweep.cwd / "relative_write.txt").exists(), "the file landed in the command's working directory"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


def _recorded_pids(sweep: Sweep) -> list[int]:
    texts = [p.read_text() for p in (sweep.pid_file, sweep.trial_dir("digits_mlp") / "orphan.pid") if p.is_file()]
    return sorted({int(line) for text in texts for line in text.split()})


def check_no_leftover_processes(sweep: Sweep) -> None:
    pids = _recorded_pids(sweep)
    assert pids, "the submission recorded no pid"
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in pids if _alive(pid)]
    assert not alive, f"processes the submission started outlived the sweep: {alive}"


def check_output_captured(sweep: Sweep) -> None:
    log = sweep.trial_dir("digits_mlp") / "output.log"
    assert log.is_file(), "no output.log in the trial directory"
    text = log.read_text(errors="replace")
    for marker in ("LOUD-STDOUT-MARKER", "LOUD-STDERR-MARKER", "LOUD-FD1-MARKER", "LOUD-FD2-MARKER"):
        assert marker in text, f"{marker} is not in output.log"
    assert "LOUD-" not in sweep.output, "the submission's output reached the terminal"
    assert len(sweep.output) < 100_000, f"{len(sweep.output)} characters on the terminal"


# --- the corpus -------------------------------------------------------------------------------

FAILED = frozenset({"failed"})
TIMEOUT = frozenset({"timeout"})
INVALID = frozenset({"invalid"})
ANY_END = COMPLETED | {"diverged"}
KILLED = r"time ?out|timed out|time limit|\bkilled\b|\d+(\.\d+)? ?s\b"

CASES = [
    Case("sys_exit.py", FAILED, (r"update_params", r"SystemExit|exit\D*3\b")),
    Case("exit_zero.py", FAILED, (r"update_params|exit",), slow=True),
    Case("os_exit.py", FAILED, (r"exit\D*1\b",)),
    Case("endless_loop.py", TIMEOUT, (KILLED,), trial_timeout=15),
    Case("ignore_sigterm.py", TIMEOUT, (KILLED,), trial_timeout=15, slow=True),
    Case("segfault.py", FAILED, (r"SIGSEGV|segmentation|signal 11",)),
    Case("keyboard_interrupt.py", FAILED, (r"KeyboardInterrupt",)),
    Case("wrong_return.py", FAILED, (r"update_params", r"None")),
    Case("unprintable_exception.py", FAILED, (r"UnprintableError",)),
    Case("multiline_exception.py", FAILED, (r"first line of a long cause",)),
    Case("prepare_for_eval_raises.py", FAILED, (r"prepare_for_eval", r"refuses to prepare"), slow=True),
    Case("data_selection_raises.py", FAILED, (r"data_selection", r"found no batch"), slow=True),
    Case("bad_batch_size.py", FAILED, (r"get_batch_size", r"sixty-four")),
    Case("make_optimizer_raises.py", FAILED, (r"make_optimizer_raises\.py:{line:raise KeyError}", r"learning_rate")),
    Case("nan_params.py", frozenset({"diverged"}), (r"nan|finite",)),
    Case("patch_time_module.py", COMPLETED, check=check_runner_clock_unaffected),
    Case("patch_runner_clock.py", INVALID | COMPLETED, trial_timeout=40, check=check_clock_tampering),
    Case("patch_target.py", COMPLETED | INVALID, check=check_target_from_file),
    Case("patch_target_at_import.py", INVALID, (r"replaced",), check=check_target_from_file, tampers_at_import=True),
    Case("patch_eval_model.py", COMPLETED | INVALID, check=check_eval_not_forged),
    Case("forged_summary.py", FAILED | INVALID, check=check_forged_summary),
    Case("relative_write.py", COMPLETED, check=check_relative_write),
    Case("orphan_process.py", COMPLETED, check=check_no_leftover_processes),
    Case("setsid_orphan.py", COMPLETED, check=check_no_leftover_processes),
    Case("hanging_thread.py", COMPLETED, check=check_no_leftover_processes, slow=True),
    Case("close_stdio.py", COMPLETED),
    Case("loud_output.py", COMPLETED, check=check_output_captured),
    Case("mutate_batch.py", ANY_END),
]


def expand(phrase: str, path: Path) -> str:
    """``{line:TEXT}``: the number of the file's line holding TEXT."""

    def line_of(match: re.Match[str]) -> str:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if match.group(1) in line:
                return str(number)
        raise AssertionError(f"{path} has no line with {match.group(1)!r}")

    return re.sub(r"\{line:([^}]*)\}", line_of, phrase)


def run_sweep(case: Case, tmp_path: Path) -> Sweep:
    """``algobench submit`` called in this process: the command never runs submission code itself
    (it checks the file statically; each trial imports it in its own process), so the sweep can
    share this process's trial-process server instead of starting a fresh interpreter each time."""
    path = CORPUS / case.file
    experiment_dir, cwd, pid_file = tmp_path / "experiments", tmp_path / "cwd", tmp_path / "pids.txt"
    cwd.mkdir()
    args = [
        "submit", str(path), "--workloads", "digits_mlp,mnist1d", "--ruleset", "self", "--studies", "1",
        "--scale", "tiny", "--threads", "1", "--experiment-dir", str(experiment_dir), "--quiet",
        "--trial-timeout", str(case.trial_timeout),
    ]  # fmt: skip
    terminal = io.StringIO()
    start = time.monotonic()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(terminal), contextlib.redirect_stderr(terminal):
            returncode = main(args)
    finally:
        os.chdir(before)
    return Sweep(path, returncode, terminal.getvalue(), experiment_dir, cwd, pid_file, time.monotonic() - start)


def _cleanup(sweep: Sweep | None) -> None:
    """Kill, by pid, what the submission started and the sweep left running: only processes
    working in this sweep's experiment directory, so that a reused pid is never touched."""
    if sweep is None:
        return
    try:
        pids = _recorded_pids(sweep)
    except AssertionError:
        return
    for pid in pids:
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if _alive(pid) and cwd.is_relative_to(sweep.experiment_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.slow else []) for case in CASES]
)
def test_misbehaving_submission_is_one_recorded_trial(case: Case, tmp_path: Path) -> None:
    sweep = None
    try:
        sweep = run_sweep(case, tmp_path)
        tail = sweep.output[-3000:]
        expected_code = 1 if case.tampers_at_import else 0
        assert sweep.returncode == expected_code, f"exit code {sweep.returncode}; terminal:\n{tail}"
        assert "Traceback" not in sweep.output, f"a traceback reached the terminal:\n{tail}"

        summary = sweep.summary("digits_mlp")
        status, error = summary.get("status"), summary.get("error")
        assert status in case.statuses, (
            f"digits_mlp status {status!r} (error: {error!r}); expected {sorted(case.statuses)}"
        )
        if error is not None:
            assert isinstance(error, str) and "\n" not in error, f"the cause is not one line: {error!r}"
            assert len(error) <= MAX_ERROR_CHARS, f"the cause is {len(error)} characters long"
        if status in ("failed", "timeout", "invalid", "diverged"):
            assert error, f"a {status} trial says why"
        if status == "failed":
            assert (sweep.trial_dir("digits_mlp") / "error.txt").is_file(), "a failed trial has no error.txt"
        for phrase in case.phrases:
            pattern = expand(phrase, sweep.file)
            assert error and re.search(pattern, error, re.IGNORECASE), f"the cause {error!r} does not match {pattern!r}"

        other = sweep.summary("mnist1d")
        assert other.get("status") in (INVALID if case.tampers_at_import else COMPLETED), (
            f"the other trial did not complete: {other.get('status')!r} ({other.get('error')!r})"
        )

        if case.check is not None:
            case.check(sweep)
    finally:
        _cleanup(sweep)


def test_corpus_is_listed() -> None:
    """Every corpus file is in the table above and in the corpus README, and at least 15 exist."""
    files = sorted(p.name for p in CORPUS.glob("*.py"))
    assert len(files) >= 15
    assert files == sorted(case.file for case in CASES)
    readme = (CORPUS / "README.md").read_text()
    missing = [name for name in files if f"`{name}`" not in readme]
    assert not missing, f"not in tests/misbehaving/README.md: {missing}"
