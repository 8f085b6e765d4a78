"""Both submission forms load; every kind of broken file gets one clear message naming it."""

from __future__ import annotations

import sys

import pytest

from algobench.errors import SubmissionError
from algobench.submission import load_submission
from algobench.workloads import get_workload
from tests.conftest import SUBMISSIONS

ALGOPERF_OLD_SPELLING = """
    import torch
    from algorithmic_efficiency import spec
    from algorithmic_efficiency.pytorch_utils import pytorch_setup

    USE_PYTORCH_DDP, RANK, DEVICE, N_GPUS = pytorch_setup()

    def get_batch_size(workload_name):
        return 32

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        return {"optimizer": torch.optim.SGD(model_params.parameters(), lr=0.1)}

    def update_params(workload, current_param_container, current_params_types, model_state,
                      hyperparameters, batch, loss_type, optimizer_state, eval_results,
                      global_step, rng):
        assert loss_type == spec.LossType.SOFTMAX_CROSS_ENTROPY
        return optimizer_state, current_param_container, model_state
"""


def test_algoperf_form_loads_and_leaves_no_algoperf_module_behind():
    submission = load_submission(SUBMISSIONS / "nadamw" / "submission.py")
    assert submission.form == "algoperf"
    assert submission.name == "nadamw"
    assert submission.prepare_for_eval is not None
    assert submission.update_params_takes_train_state
    assert not any(name.split(".")[0] in ("algoperf", "algorithmic_efficiency") for name in sys.modules)


def test_older_algorithmic_efficiency_spelling_loads(write_submission):
    submission = load_submission(write_submission(ALGOPERF_OLD_SPELLING))
    assert submission.form == "algoperf"
    assert not submission.update_params_takes_train_state
    assert "algorithmic_efficiency" not in sys.modules


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd_momentum", "nesterov"])
def test_native_baselines_load(name):
    submission = load_submission(SUBMISSIONS / name / "submission.py")
    assert submission.form == "native"
    assert submission.name == name


def test_batch_size_falls_back_to_workload_default_for_unknown_names(write_submission):
    source = ALGOPERF_OLD_SPELLING.replace(
        "return 32", "raise ValueError(f'Unsupported workload name: {workload_name}.')"
    )
    submission = load_submission(write_submission(source))
    workload = get_workload("digits_mlp")
    with pytest.warns(UserWarning, match="does not know 'digits_mlp'"):
        assert submission.batch_size(workload, None) == workload.default_batch_size
    assert submission.batch_size(workload, {"batch_size": 17}) == 17


def test_nadamw_names_a_batch_size_for_every_workload_and_variant():
    """No workload, variant included, falls back to the default (a warning per trial)."""
    import warnings
    from types import SimpleNamespace

    from algobench.workloads import workload_class, workload_names

    submission = load_submission(SUBMISSIONS / "nadamw" / "submission.py")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in workload_names():
            cls = workload_class(name)
            workload = SimpleNamespace(name=name, base_name=cls.base_name, default_batch_size=cls.default_batch_size)
            assert submission.batch_size(workload, None) == cls.default_batch_size, name


def test_missing_file(tmp_path):
    with pytest.raises(SubmissionError, match="submission file not found: .*nope.py"):
        load_submission(tmp_path / "nope.py")


def test_syntax_error_names_file_and_line(write_submission):
    path = write_submission("import torch\n\ndef make_optimizer(params, hyperparameters, workload)\n    pass\n")
    with pytest.raises(SubmissionError) as caught:
        load_submission(path)
    assert f"{path}:3: syntax error" in str(caught.value)


def test_import_error_names_line(write_submission):
    path = write_submission("import torch\nx = 1\nraise RuntimeError('boom at import')\n")
    with pytest.raises(SubmissionError, match=r"submission.py:3: importing the submission raised RuntimeError: boom"):
        load_submission(path)


def test_missing_required_function(write_submission):
    source = (
        ALGOPERF_OLD_SPELLING.split("def get_batch_size")[0]
        + """
    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        return {}

    def update_params(workload, current_param_container, current_params_types, model_state,
                      hyperparameters, batch, loss_type, optimizer_state, eval_results,
                      global_step, rng):
        return optimizer_state, current_param_container, model_state
    """
    )
    with pytest.raises(SubmissionError, match="missing required function.*get_batch_size"):
        load_submission(write_submission(source))


def test_no_submission_functions_at_all(write_submission):
    with pytest.raises(SubmissionError, match="no submission functions found"):
        load_submission(write_submission("x = 1\n"))


def test_wrong_signature_names_function_and_line(write_submission):
    source = ALGOPERF_OLD_SPELLING.replace(
        "def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):",
        "def init_optimizer_state(workload, params):",
    )
    path = write_submission(source)
    with pytest.raises(SubmissionError) as caught:
        load_submission(path)
    message = str(caught.value)
    assert f"{path}:10: init_optimizer_state() does not take AlgoPerf's arguments" in message


def test_native_wrong_signature(write_submission):
    path = write_submission("def make_optimizer(params):\n    return None\n")
    with pytest.raises(SubmissionError, match=r"submission.py:1: make_optimizer\(\) does not take"):
        load_submission(path)
