"""AlgoPerf files that need their home: an import root for a file that imports its own package by
its path in another repository, and a one-process ``torch.distributed`` group (gloo, CPU) for a
submission that requires one. The corpus's ``submissions`` package is taken out of
``sys.modules`` after each test, so that it never shadows the repository's baselines."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from algobench.errors import AlgobenchError
from algobench.executors.process import ProcessExecutor
from algobench.layout import META_FILE
from algobench.trial_spec import TrialSpec
from algobench.workloads import get_workload

HOME = Path(__file__).parent / "algoperf_home" / "other_repo"
SUBMISSION = HOME / "submissions" / "team_x" / "external_tuning" / "sgd_home" / "submission.py"


def spec(tmp_path: Path, **overrides) -> TrialSpec:
    base = TrialSpec(
        submission_path=str(SUBMISSION), submission_name="sgd_home", workload_name="digits_mlp", study=0, trial=1,
        hyperparameters={"learning_rate": 0.1}, seed=0, experiment_dir=str(tmp_path), make_workload=get_workload,
        stop_on_target=False, max_steps=40, eval_every_steps=20, scale="tiny", threads=1,
    )  # fmt: skip
    return replace(base, **overrides)


def run(trial: TrialSpec) -> dict:
    with ProcessExecutor(parallel=1) as executor:
        return executor.submit(trial).result()


def test_without_its_home_the_file_cannot_import_itself(tmp_path: Path):
    missing = r"importing the submission raised ModuleNotFoundError: .*'submissions\.team_x"
    with pytest.raises(AlgobenchError, match=missing):
        run(spec(tmp_path))


@pytest.fixture
def own_modules():
    """Restore ``sys.modules``' ``submissions*`` entries as they were before the test."""
    before = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "submissions"}
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == "submissions"]:
        del sys.modules[name]
    sys.modules.update(before)


def test_with_an_import_root_and_a_process_group_it_trains_and_the_root_is_recorded(tmp_path: Path, own_modules):
    """In-process (``run_trial``, what every executor calls): the group is there while it trains
    (the optimizer refuses to start without it), and neither it nor the root outlives the trial."""
    import torch.distributed as dist

    from algobench.trial import run_trial

    trial = spec(tmp_path, import_root=str(HOME))
    summary = run_trial(trial)
    assert summary["status"] == "ok", summary.get("error")
    assert summary["steps"] == 40 and summary["num_evals"] == 2
    meta = json.loads((trial.trial_dir() / META_FILE).read_text())
    assert meta["import_root"] == meta["spec"]["import_root"] == str(HOME)
    assert not dist.is_initialized() and str(HOME) not in sys.path


def test_the_group_and_the_path_are_the_trials_only(tmp_path: Path):
    """In-process (the debugging executor), the trial's group and sys.path entry are gone after it,
    and a group that already existed is used as it is and left alone."""
    import torch.distributed as dist

    from algobench.algoperf_compat import import_root, single_process_group

    with single_process_group() as made:
        assert made and dist.is_initialized() and dist.get_world_size() == 1
        with single_process_group() as made_again:
            assert not made_again and dist.is_initialized()
        assert dist.is_initialized()
    assert not dist.is_initialized()
    with import_root(str(tmp_path)):
        assert sys.path[0] == str(tmp_path)
    assert str(tmp_path) not in sys.path
