"""The driver loop: a tuner asks for trials, an executor runs them, the tuner hears the results.

The same loop serves ``algobench submit`` (quasi-random search as a fixed plan), target setting,
SLURM sweeps and adaptive tuners: it keeps up to ``executor.parallelism`` trials in flight and
asks the tuner for the next one whenever a slot frees, so a tuner can react to every result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import replace

from algobench.executors.base import Executor, InfrastructureError, Summary
from algobench.fork import fork_trial_dir
from algobench.seeds import derive_seed
from algobench.trial_spec import TrialSpec
from algobench.tuning.base import FixedTrials, TrialRequest, Tuner

SpecFactory = Callable[[TrialRequest], TrialSpec]
ResultCallback = Callable[[TrialSpec, Summary | None, BaseException | None], None]


def drive(
    tuner: Tuner,
    executor: Executor,
    make_spec: SpecFactory,
    *,
    on_result: ResultCallback | None = None,
) -> list[tuple[TrialSpec, Summary | None]]:
    """Run the tuner's requests to the end; return (spec, summary) per request, in finishing order.

    A trial whose executor failed for algobench's own reasons (``InfrastructureError``) gets no
    summary (None): nothing final was written, a rerun retries it, and the tuner is not told.
    """
    in_flight: dict[Future[Summary], tuple[TrialRequest, TrialSpec]] = {}
    done: list[tuple[TrialSpec, Summary | None]] = []
    while True:
        starting: list[tuple[TrialRequest, TrialSpec]] = []
        while len(in_flight) + len(starting) < executor.parallelism:
            request = tuner.ask()
            if request is None:
                break
            spec = make_spec(request)
            if request.changes or request.fork_from is not None:
                _prepare_fork(request, spec, make_spec)
            starting.append((request, spec))
        if starting:
            futures = executor.submit_many([spec for _, spec in starting])
            in_flight.update(zip(futures, starting, strict=True))
        if not in_flight:
            if tuner.finished:
                return done
            raise RuntimeError(f"tuner {tuner.name!r} asks for nothing, runs nothing and is not finished")
        finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
        for future in finished:
            request, spec = in_flight.pop(future)
            error = future.exception()
            if error is None:
                summary = future.result()
                tuner.tell(request, summary)
                done.append((spec, summary))
            elif isinstance(error, InfrastructureError):
                done.append((spec, None))
            else:
                raise error
            if on_result:
                on_result(spec, done[-1][1], error)


def _prepare_fork(request: TrialRequest, spec: TrialSpec, make_spec: SpecFactory) -> None:
    """A fork (or a member's own change) as files in the trial directory, applied by the trial."""
    if request.change_step is None:
        raise ValueError(f"request for trial {request.trial} changes hyperparameters but names no change_step")
    if request.fork_from is None:
        donor_dir, reseed = spec.trial_dir(), None
    else:
        donor_dir = make_spec(replace(request, trial=request.fork_from, fork_from=None)).trial_dir()
        reseed = derive_seed(spec.seed, request.round)  # the clone's own data order and dropout
    fork_trial_dir(donor_dir, spec.trial_dir(), at_step=request.change_step, reseed=reseed, changes=request.changes)


def drive_specs(
    specs: Sequence[TrialSpec], executor: Executor, *, on_result: ResultCallback | None = None
) -> list[tuple[TrialSpec, Summary | None]]:
    """Run a planned list of trials (``algobench submit``'s quasi-random search, replays)."""
    requests = [TrialRequest(trial=index, hyperparameters=spec.hyperparameters) for index, spec in enumerate(specs)]
    return drive(FixedTrials(requests), executor, lambda request: specs[request.trial], on_result=on_result)
