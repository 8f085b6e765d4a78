"""``RayExecutor``: every trial as a Ray task, on a local Ray started for the run or on a cluster.

Ray decides where a trial runs (a task asking for the trial's ``threads`` CPUs, so one trial per
worker process and no more trials on a node than its cores); what runs there is algobench's own
child-process executor, so a trial on Ray has what it has on this machine: its own process, its
timeout, and the parent's clock check (the Ray worker is the parent that watches it). Results go
to the trial directory, which must be on a filesystem every node sees (as for SLURM).

Resume is the trial's own: ``run_trial`` skips a finished trial and resumes an unfinished one
from its checkpoint. A worker or node lost mid-trial is retried by Ray (``TASK_RETRIES``): the
new attempt resumes from the last checkpoint. When the retries are spent, the trial's future
raises ``InfrastructureError`` (nothing final written; a rerun of the command resumes it).

Ray is imported here only, and this module only when ``--executor ray`` is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from algobench.errors import AlgobenchError
from algobench.executors.base import Executor, InfrastructureError, Summary, resolved
from algobench.results import read_summary
from algobench.trial_spec import TrialSpec

ADDRESS_VARIABLE = "RAY_ADDRESS"
REACH_TIMEOUT_SEC = 5.0
TASK_RETRIES = 3  # attempts after a lost worker or node; each resumes the trial from its checkpoint


def connect(address: str | None = None) -> bool:
    """Join the Ray cluster at ``address`` (else ``$RAY_ADDRESS``), or start a local Ray with this
    machine's cores when neither is set. True when this process started Ray (and must stop it)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get(ADDRESS_VARIABLE) or None
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING", "configure_logging": True}
    try:
        if address is None:
            from algobench.executors.base import available_cores

            ray.init(address="local", num_cpus=available_cores(), include_dashboard=False, **options)
            return True
        _check_reachable(address)
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = "--ray-address" if address != os.environ.get(ADDRESS_VARIABLE) else f"${ADDRESS_VARIABLE}"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AlgobenchError(f"{where} {address}: no Ray cluster answers there ({first})") from None
    return False


def _check_reachable(address: str) -> None:
    """A ``host:port`` that nothing listens on fails in seconds (``ray.init`` would retry for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # "auto", a Ray Client URL: Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_SEC).close()
    except OSError as error:
        raise ConnectionError(f"nothing listens at {host}:{port} ({error.strerror or error})") from None


def cluster_cpus() -> int:
    """The CPUs the connected Ray cluster offers (all nodes)."""
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


class RayExecutor(Executor):
    """Runs each trial as a Ray task (the trial's ``threads`` CPUs) that runs it in a child process."""

    name = "ray"

    def __init__(self, *, address: str | None = None, parallel: int | None = None, preload: Sequence[str] = ()) -> None:
        import ray

        self._started = connect(address)
        self._preload = tuple(preload)
        self._parallel = parallel
        self._task = ray.remote(run_on_worker)
        self._pending: dict[Any, Future[Summary]] = {}

    @property
    def parallelism(self) -> int:
        """As many trials as the cluster has CPUs for (one each, at one thread), or ``parallel``."""
        fitting = max(cluster_cpus(), 1)
        return fitting if self._parallel is None else max(min(self._parallel, fitting), 1)

    def submit(self, spec: TrialSpec) -> Future[Summary]:
        finished = read_summary(spec.trial_dir())
        if finished is not None:  # skipped without a round trip to the cluster
            return resolved(finished)
        ref = self._task.options(
            num_cpus=max(spec.threads, 1), max_retries=TASK_RETRIES, retry_exceptions=False,
            name=f"algobench trial {spec.workload_name} study {spec.study} trial {spec.trial}",
        ).remote(spec, self._preload)  # fmt: skip
        outer: Future[Summary] = Future()
        outer.set_running_or_notify_cancel()
        self._pending[ref] = outer

        def settle(inner: Future) -> None:
            self._pending.pop(ref, None)
            _settle(outer, inner, spec)

        ref.future().add_done_callback(settle)
        return outer

    def close(self) -> None:
        import ray

        for ref in list(self._pending):  # Ctrl-C or a driver error: stop the trials (checkpoints stay)
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished, or the cluster is gone: nothing to stop
                continue
        self._pending.clear()
        if self._started:
            ray.shutdown()


def _settle(outer: Future[Summary], inner: Future, spec: TrialSpec) -> None:
    """The trial's outcome as the driver expects it: a summary, ``InfrastructureError`` or ``AlgobenchError``."""
    if outer.done():
        return
    error = inner.exception()
    if error is not None:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        outer.set_exception(
            InfrastructureError(
                f"{spec.trial_dir()}: its Ray task ended without a result after {TASK_RETRIES} retries "
                f"({type(error).__name__}: {first}); its checkpoint is kept, a rerun resumes it"
            )
        )
        return
    kind, payload = inner.result()
    if kind == "summary":
        outer.set_result(payload)
    elif kind == "user_error":
        outer.set_exception(AlgobenchError(payload))
    else:
        outer.set_exception(InfrastructureError(payload))


def run_on_worker(spec: TrialSpec, preload: Sequence[str]) -> tuple[str, Any]:
    """The Ray task: the trial in a child process of this worker, watched by it (isolation,
    timeout, clock check). Returns ("summary", summary), ("infrastructure", message) or
    ("user_error", message), so that no exception type has to survive Ray's pickling."""
    from algobench.executors.process import ProcessExecutor

    executor = ProcessExecutor(parallel=1, preload=preload)
    try:
        return "summary", executor.submit(spec).result()
    except InfrastructureError as error:
        return "infrastructure", str(error)
    except AlgobenchError as error:
        return "user_error", str(error)
    finally:
        executor.close()
