"""The driver loop: a tuner asks for trials, an executor runs them, the tuner hears the results.

The same loop serves ``algobench submit`` (quasi-random search as a fixed plan), target setting,
SLURM sweeps and adaptive tuners: it keeps up to ``executor.parallelism`` trials in flight and
asks the tuner for the next one whenever a slot frees, so a tuner can react to every result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait

from algobench.executors.base import Executor, InfrastructureError, Summary
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
            starting.append((request, make_spec(request)))
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


def drive_specs(
    specs: Sequence[TrialSpec], executor: Executor, *, on_result: ResultCallback | None = None
) -> list[tuple[TrialSpec, Summary | None]]:
    """Run a planned list of trials (``algobench submit``'s quasi-random search, replays)."""
    requests = [TrialRequest(trial=index, hyperparameters=spec.hyperparameters) for index, spec in enumerate(specs)]
    return drive(FixedTrials(requests), executor, lambda request: specs[request.trial], on_result=on_result)
