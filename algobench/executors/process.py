"""The default executor: every trial in its own process, watched by a thread of this one.

A trial process is forked from a server that has already imported torch and algobench (so a
trial starts in milliseconds, not the 1.5 s of a fresh interpreter), runs in its own session
(a Ctrl-C at the terminal reaches only algobench, which stops its trials; whatever a trial
leaves running is killed with its process group), works in its trial directory, and writes its
output to ``output.log`` there. It reports each evaluation and its progress through a pipe.

Whatever the trial process does, the watcher ends with a recorded outcome: the summary the
trial wrote (after the clock check, ``invalid`` if its clocks were impossible); ``timeout`` when
it ran past its timeout; ``failed`` with the cause when it died inside the submission's code
(``sys.exit``, ``os._exit``, a segfault, an out-of-memory kill); and ``InfrastructureError``
(nothing final written, a rerun retries) when it died inside algobench's own code.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from algobench.errors import AlgobenchError
from algobench.executors.base import Executor, InfrastructureError, Summary
from algobench.executors.clock_check import Report, check_clocks
from algobench.layout import ERROR_FILE, SUMMARY_FILE, TrialStatus
from algobench.results import read_summary, write_json
from algobench.trial_spec import TrialSpec

OUTPUT_FILE = "output.log"
# Imported once by the fork server, so that no trial pays for them: the trial machinery, and
# torch's compiler stack, which torch.optim imports when a first optimizer is built (1.5-3 s here).
PRELOAD = ("algobench.trial", "torch._dynamo")
POLL_SEC = 0.25
EXIT_INFRASTRUCTURE = 70  # the trial process's own code for "algobench failed"
TRIAL_MARKER = "ALGOBENCH_TRIAL"  # in the environment of a trial's process and its descendants
EXIT_USER_ERROR = 2  # "the submission file cannot be loaded": the run stops


def default_timeout_sec(budget_sec: float) -> float:
    """A trial's timeout from its budget: the budget again for evaluations (untimed, but they take
    wall time), plus two minutes for start-up and generating a dataset on first use."""
    return 2.0 * budget_sec + 120.0


class ProcessExecutor(Executor):
    """Runs each trial in a child process; ``parallel`` trials at once (each with its threads)."""

    name = "process"

    def __init__(self, *, parallel: int = 1, show_progress: bool = False, preload: Sequence[str] = ()) -> None:
        self._parallel = max(int(parallel), 1)
        self._show_progress = show_progress
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([*PRELOAD, *preload])
        self._context.Process(target=_noop).start()  # start the fork server (imports) before any clock runs
        self._threads = ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="trial-watcher")
        self._children: set[int] = set()
        self._lock = threading.Lock()
        self._closing = False  # set on Ctrl-C or a driver error: a killed trial is then no outcome

    @property
    def parallelism(self) -> int:
        return self._parallel

    def submit(self, spec: TrialSpec) -> Future[Summary]:
        return self._threads.submit(self._watch, spec)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            children = list(self._children)
        for pid in children:  # Ctrl-C or an error in the driver: stop the trials (checkpoints stay)
            _kill_group(pid)
        self._threads.shutdown(wait=True, cancel_futures=True)

    # --- one trial ---------------------------------------------------------------------------
    def _watch(self, spec: TrialSpec) -> Summary:
        finished = read_summary(spec.trial_dir())
        if finished is not None:
            return finished
        spec.trial_dir().mkdir(parents=True, exist_ok=True)
        receiver, sender = self._context.Pipe(duplex=False)
        phase = self._context.RawValue("i", 0)
        process = self._context.Process(
            target=_child_main, args=(spec, sender, phase), name=f"trial {spec.trial_dir()}"
        )
        bar = _progress_bar(spec) if self._show_progress else None
        started = time.monotonic()
        process.start()
        sender.close()
        with self._lock:
            self._children.add(process.pid)
        reports: list[Report] = []
        outcome: dict[str, Any] = {}
        timeout = spec.timeout_sec
        polled, stalled = time.monotonic(), 0.0  # stalled: how long this loop was kept from running, in all
        try:
            while True:
                if timeout is not None and time.monotonic() - started > timeout:
                    outcome["timed_out"] = True
                    break
                try:
                    if receiver.poll(POLL_SEC):
                        kind, payload = receiver.recv()
                        now = time.monotonic()
                        stalled, polled = stalled + max(now - polled - POLL_SEC, 0.0), now
                        if kind == "eval":
                            reports.append(Report(now, payload, process_cpu_sec(process.pid), stalled))
                        elif kind == "progress" and bar is not None:
                            bar.update(payload)
                        elif kind == "config" and timeout is None:
                            timeout = default_timeout_sec(payload)
                        elif kind == "started":
                            outcome["started"] = Report(
                                now, {"total_duration": payload}, process_cpu_sec(process.pid), stalled
                            )
                        else:
                            outcome[kind] = payload
                    elif not process.is_alive() and not receiver.poll(0):
                        break  # dead, and nothing it sent is left unread (its "done" may land just before it dies)
                    else:
                        now = time.monotonic()
                        stalled, polled = stalled + max(now - polled - POLL_SEC, 0.0), now
                except (EOFError, OSError):  # the child closed its end (exited, or closed the pipe)
                    process.join(POLL_SEC)
                    if not process.is_alive():
                        break
        finally:
            _kill_group(process.pid)
            process.join()
            _kill_marked(spec.trial_dir())
            ended = time.monotonic()
            with self._lock:
                self._children.discard(process.pid)
            receiver.close()
            if bar is not None:
                bar.close()
        return self._outcome(spec, process.exitcode, phase.value, outcome, reports, started, ended, timeout)

    def _outcome(
        self, spec: TrialSpec, exitcode: int | None, phase: int, outcome: dict[str, Any],
        reports: list[Report], started: float, ended: float, timeout: float | None,
    ) -> Summary:  # fmt: skip
        last_step = reports[-1].row.get("global_step") if reports else 0
        # The summary is the one the runner handed over through the pipe at its end; a summary file
        # without that hand-over was written by someone else (a submission forging its result in
        # its working directory, which is the trial directory) or by a run that died: never trusted.
        done = outcome.get("done")
        if done is None:
            (spec.trial_dir() / SUMMARY_FILE).unlink(missing_ok=True)
        if self._closing and done is None:
            raise InfrastructureError(f"{spec.trial_dir()}: stopped (interrupted); its checkpoint is kept")
        if outcome.get("timed_out"):
            return _record(
                spec, TrialStatus.TIMEOUT,
                f"killed after {timeout:.0f} s, the trial timeout (last evaluation at step {last_step}); "
                f"a hang, or far past its budget",
            )  # fmt: skip
        if done is not None:
            if TrialStatus.parse(done.get("status")) is None:
                return done  # a segment that ended at until_step: nothing final yet
            write_json(spec.trial_dir() / SUMMARY_FILE, done)
            reference = outcome.get("started")
            return _checked(spec, read_summary(spec.trial_dir()) or done, reports, started, ended, reference)
        if "user_error" in outcome:
            raise AlgobenchError(outcome["user_error"])
        died = _describe_exit(exitcode)
        if phase == 1:
            cause = f"the trial process {died} inside the submission's code (last evaluation at step {last_step})"
            return _record(spec, TrialStatus.FAILED, cause)
        cause = outcome.get("infrastructure") or f"the trial process {died} in algobench's own code"
        path = spec.trial_dir() / ERROR_FILE
        if not path.exists():
            path.write_text(cause + "\n")
        raise InfrastructureError(
            f"{spec.trial_dir()}: {cause}; see {path.name} and {OUTPUT_FILE} there; a rerun retries it"
        )


def _record(spec: TrialSpec, status: TrialStatus, cause: str) -> Summary:
    from algobench.trial import record_failure

    return record_failure(spec, status, cause)


def _checked(
    spec: TrialSpec, summary: Summary, reports: list[Report], started: float, ended: float, reference: Report | None
) -> Summary:
    """The trial's own summary, or an ``invalid`` one when its clocks cannot be true."""
    reason = check_clocks(reports, started, ended, reference, cores=_cores(), clock=spec.clock)
    if reason is None:
        return summary
    summary = {
        **summary,
        "status": str(TrialStatus.INVALID),
        "claimed_status": summary.get("status"),
        "claimed_time_to_target": summary.get("time_to_target"),
        "time_to_target": None,
        "error": f"clock check failed: {reason}",
    }
    write_json(spec.trial_dir() / SUMMARY_FILE, summary)
    (spec.trial_dir() / ERROR_FILE).write_text(summary["error"] + "\n")
    return summary


def process_cpu_sec(pid: int | None) -> float | None:
    """The CPU time (user + system, all threads) the kernel has counted for ``pid``: a measure
    the process cannot rewrite. None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {exitcode}"


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _kill_marked(trial_dir: Path) -> None:
    """Kill what the trial left running outside its process group (a daemon in its own session):
    every process whose environment still carries this trial's marker (Linux ``/proc``)."""
    needle = f"\0{TRIAL_MARKER}={trial_dir}\0".encode()
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry.name}/environ", "rb") as handle:
                    environ = b"\0" + handle.read()
                if needle in environ:
                    os.kill(int(entry.name), signal.SIGKILL)


def _progress_bar(spec: TrialSpec) -> Any:
    from algobench.progress import TrialProgressBar

    return TrialProgressBar(spec)


def _noop() -> None:
    return None


def _die_with_parent() -> None:
    """The trial dies with algobench, however algobench dies (even SIGKILL), rather than training
    on as an orphan. Its OS parent is the fork server, which outlives algobench while any trial
    holds the fork server's liveness pipe (every child of it does): so a thread watches the pipe
    that algobench itself holds open (``parent_process().sentinel``) and kills the trial's process
    group when it closes. PR_SET_PDEATHSIG covers the fork server's own death (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the trial and what it started in its group

    threading.Thread(target=watch, name="algobench-parent-watch", daemon=True).start()


def _child_main(spec: TrialSpec, sender: Any, phase: Any) -> None:
    """The trial process: its own session, its trial directory, output to a file, then the trial."""
    os.setsid()
    _die_with_parent()
    trial_dir = spec.trial_dir()
    os.environ[TRIAL_MARKER] = str(trial_dir)  # inherited by whatever the submission starts
    output = os.open(trial_dir / OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.chdir(trial_dir)
    signal.signal(signal.SIGINT, signal.SIG_DFL)

    def send(kind: str, payload: Any) -> None:
        with contextlib.suppress(OSError, ValueError):  # the submission closed our pipe: the
            sender.send((kind, payload))  # parent still reads the trial directory

    from algobench.trial import run_trial

    try:
        summary = run_trial(
            spec,
            on_progress=lambda progress: send("progress", progress),
            on_eval=lambda row: send("eval", row),
            on_config=lambda config: send("config", config.budget_sec),
            on_start=lambda wall: send("started", wall),
            phase=phase,
        )
    except AlgobenchError as error:  # a broken submission file: the whole run stops, one line
        send("user_error", str(error))
        os._exit(EXIT_USER_ERROR)
    except InfrastructureError as error:
        send("infrastructure", str(error))
        sys.stderr.flush()
        os._exit(EXIT_INFRASTRUCTURE)
    except BaseException as error:
        send("infrastructure", f"{type(error).__name__}: {error}")
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(EXIT_INFRASTRUCTURE)
    send("done", summary)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no atexit handlers of the submission's
