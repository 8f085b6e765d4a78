"""Loading submission files, in AlgoPerf's form or algobench's native form (DESIGN.md contract 2).

Both forms end up as one ``Submission``: AlgoPerf's four functions, which is all the runner
calls. A native file (``make_optimizer``) is adapted here, once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import numbers
import sys
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from algobench import spec
from algobench.algoperf_compat import algoperf_modules
from algobench.errors import DivergedError, SubmissionError
from algobench.hyperparameters import Hyperparameters
from algobench.submission_check import ALGOPERF_REQUIRED, resolve_submission_path

# The keyword arguments the runner passes, exactly as AlgoPerf's submission_runner names them.
UPDATE_PARAMS_ARGS = (
    "workload", "current_param_container", "current_params_types", "model_state",
    "hyperparameters", "batch", "loss_type", "optimizer_state", "eval_results", "global_step",
    "rng",
)  # fmt: skip
PREPARE_FOR_EVAL_ARGS = tuple(a for a in UPDATE_PARAMS_ARGS if a != "batch")
INIT_OPTIMIZER_ARGS = ("workload", "model_params", "model_state", "hyperparameters", "rng")
DATA_SELECTION_ARGS = (
    "workload", "input_queue", "optimizer_state", "current_param_container", "model_state",
    "hyperparameters", "global_step", "rng",
)  # fmt: skip

# Hyperparameters a tuner may change mid-run, written into every torch optimizer the submission
# holds (both forms). The learning rate is handled apart: it scales the schedule (``_scale_lr``).
# Each name lists (param_group key, writer) alternatives: the first key a group has is written
# (beta1 is Adam's first beta, and heavy ball's or Nesterov's momentum).
Writer = tuple[str, Callable[[dict[str, Any], float], None]]
PARAM_GROUP_WRITERS: Mapping[str, tuple[Writer, ...]] = {
    "weight_decay": (("weight_decay", lambda g, v: g.update(weight_decay=v)),),
    "momentum": (("momentum", lambda g, v: g.update(momentum=v)),),
    "beta1": (
        ("betas", lambda g, v: g.update(betas=(v, g["betas"][1]))),
        ("momentum", lambda g, v: g.update(momentum=v)),
    ),
    "one_minus_beta1": (
        ("betas", lambda g, v: g.update(betas=(1.0 - v, g["betas"][1]))),
        ("momentum", lambda g, v: g.update(momentum=1.0 - v)),
    ),
    "beta2": (("betas", lambda g, v: g.update(betas=(g["betas"][0], v))),),
    "epsilon": (("eps", lambda g, v: g.update(eps=v)),),
}
# Read from the hyperparameters at every step by the native training step.
NATIVE_PER_STEP = ("label_smoothing", "grad_clip")
# An AlgoPerf-form file lists here the names its update_params reads at every step.
PER_STEP_DECLARATION = "HYPERPARAMETERS_READ_EACH_STEP"


@dataclass(frozen=True)
class Submission:
    """A loaded submission: AlgoPerf's functions, whatever form the file was written in."""

    path: Path
    form: str  # "algoperf" or "native"
    get_batch_size: Callable[[str], int] | None
    init_optimizer_state: Callable[..., Any]
    update_params: Callable[..., spec.UpdateReturn]
    data_selection: Callable[..., Any]
    prepare_for_eval: Callable[..., spec.UpdateReturn] | None
    update_params_takes_train_state: bool
    per_step_hyperparameters: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The folder name (``submissions/nadamw/submission.py`` -> ``nadamw``), else the stem."""
        return self.path.parent.name if self.path.stem == "submission" else self.path.stem

    def batch_size(self, workload: Any, hyperparameters: Mapping[str, Any] | None) -> int:
        """The submission's batch size for ``workload``, checked to be a positive int.

        AlgoPerf files only know AlgoPerf's workload names; for ours they raise, and the
        workload's default batch size is used instead (with a warning).
        """
        if hyperparameters and "batch_size" in hyperparameters:
            return _positive_int(self.path, "hyperparameter batch_size", hyperparameters["batch_size"])
        if self.get_batch_size is not None:
            for name in (workload.name, workload.base_name):
                try:
                    value = self.get_batch_size(name)
                except (KeyError, ValueError, NotImplementedError):  # AlgoPerf files raise these for unknown names
                    continue
                return _positive_int(self.path, f"get_batch_size({name!r})", value)
            warnings.warn(
                f"{self.path}: get_batch_size does not know {workload.name!r}; "
                f"using the workload's default batch size {workload.default_batch_size}",
                stacklevel=2,
            )
        return workload.default_batch_size

    def apply_hyperparameters(self, optimizer_state: Any, old: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        """Write ``changes`` into the torch optimizer(s) and scheduler(s) in ``optimizer_state``.

        A learning-rate change scales the base values, so the schedule keeps its shape: after it,
        the rate at step t is new base x the schedule's factor at t. A name that nothing here can
        apply (a warm-up length baked into a schedule, an unknown name) is refused, never dropped.
        """
        changed = {k: v for k, v in changes.items() if k not in old or old[k] != v}
        optimizers, schedulers = _torch_objects(optimizer_state)
        refused = []
        for name, value in changed.items():
            if name in self.per_step_hyperparameters:
                continue
            if name == "learning_rate" and optimizers:
                _scale_lr(optimizers, schedulers, old.get("learning_rate"), _number(self.path, name, value))
            elif name in PARAM_GROUP_WRITERS and optimizers:
                groups = [g for o in optimizers for g in o.param_groups]
                writers = [next((w for key, w in PARAM_GROUP_WRITERS[name] if key in g), None) for g in groups]
                if None in writers:
                    keys = " or ".join(repr(key) for key, _ in PARAM_GROUP_WRITERS[name])
                    refused.append(f"{name} (an optimizer here has no {keys})")
                    continue
                for group, write in zip(groups, writers, strict=True):
                    write(group, _number(self.path, name, value))
            else:
                refused.append(name)
        if refused:
            raise SubmissionError(
                f"{self.path}: cannot change {', '.join(refused)} mid-run: the submission's optimizer(s) "
                f"{[type(o).__name__ for o in optimizers] or 'none found in optimizer_state'} take "
                f"learning_rate, {', '.join(PARAM_GROUP_WRITERS)}; per-step names: "
                f"{', '.join(self.per_step_hyperparameters) or 'none'} (an AlgoPerf-form file declares "
                f"those it reads each step in {PER_STEP_DECLARATION})"
            )


def _number(path: Path, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SubmissionError(f"{path}: hyperparameter {name} must be a finite number, got {value!r}")
    return float(value)


def _torch_objects(tree: Any) -> tuple[list[torch.optim.Optimizer], list[Any]]:
    """Every torch optimizer and LR scheduler in ``tree`` (dicts, lists, tuples; AlgoPerf's
    baselines keep them under ``optimizer`` and ``scheduler``), schedulers inside a
    ``SequentialLR`` or ``ChainedScheduler`` included."""
    optimizers: list[torch.optim.Optimizer] = []
    schedulers: list[Any] = []
    pending = [tree]
    while pending:
        item = pending.pop()
        if isinstance(item, torch.optim.Optimizer):
            optimizers.append(item)
        elif isinstance(item, torch.optim.lr_scheduler.LRScheduler):
            schedulers.append(item)
            pending.extend(getattr(item, "_schedulers", []))
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return optimizers, schedulers


def _scale_lr(optimizers: list[Any], schedulers: list[Any], old: Any, new: float) -> None:
    """Multiply the current rate and every base value by new / old, so rate = base x factor(t)
    still holds from step t on (for multiplicative and recursive schedules alike)."""
    if old is None:  # self-tuning: the submission's own default, which the schedule remembers
        first = optimizers[0].param_groups[0]
        old = first.get("initial_lr", first["lr"])
    ratio = new / float(old)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:
                group["initial_lr"] *= ratio
    for scheduler in schedulers:
        scheduler.base_lrs = [base * ratio for base in scheduler.base_lrs]
        if hasattr(scheduler, "_last_lr"):
            scheduler._last_lr = [lr * ratio for lr in scheduler._last_lr]


def _positive_int(path: Path, what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise SubmissionError(f"{path}: {what} returned {value!r} ({type(value).__name__}); expected a positive int")
    return int(value)


def load_submission(path: str | Path, device: str | torch.device = "cpu") -> Submission:
    """Import a submission file and check it against the submission API.

    Raises ``SubmissionError`` naming the file (and line, where there is one) for a missing
    file, a syntax error, an import that fails, or a missing function or wrong signature.
    """
    path = resolve_submission_path(path)
    module = _import_file(path, torch.device(device))
    if all(hasattr(module, name) for name in ("update_params", "init_optimizer_state")):
        return _algoperf_form(module, path)
    if hasattr(module, "make_optimizer"):
        return _native_form(module, path)
    raise SubmissionError(
        f"{path}: no submission functions found: an AlgoPerf-form file defines "
        f"{', '.join(ALGOPERF_REQUIRED)} (optionally prepare_for_eval, data_selection); "
        f"a native file defines make_optimizer(params, hyperparameters, workload)"
    )


def _import_file(path: Path, device: torch.device) -> ModuleType:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"algobench_submission_{path.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise SubmissionError(f"{path}: not a Python file that can be imported")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look their module up here
    try:
        with algoperf_modules(device):
            module_spec.loader.exec_module(module)
    except SyntaxError as error:
        raise SubmissionError(f"{error.filename or path}:{error.lineno}: syntax error: {error.msg}") from None
    except Exception as error:
        raise SubmissionError(
            f"{path}:{error_line(error, path)}: importing the submission raised {type(error).__name__}: {error}"
        ) from None
    finally:
        sys.modules.pop(module_name, None)
    return module


MAX_CAUSE_CHARS = 500


def one_line(error: BaseException) -> str:
    """``Type: message`` on one bounded line, whatever the exception (even one whose ``str``
    raises, or whose message runs over many lines): the full text belongs in error.txt."""
    text = traceback.format_exception_only(type(error), error)[-1].strip()
    first = text.splitlines()[0] if text else type(error).__name__
    if len(text.splitlines()) > 1:
        first += " [...]"
    return first if len(first) <= MAX_CAUSE_CHARS else first[: MAX_CAUSE_CHARS - 5] + " [...]"


def error_line(error: BaseException, path: Path) -> int | str:
    """The deepest line of ``path`` in the error's traceback ('?' when it is not there)."""
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    return lines[-1] if lines else "?"


def _check_signature(path: Path, function: Callable[..., Any], args: tuple[str, ...]) -> None:
    try:
        inspect.signature(function).bind(**dict.fromkeys(args))
    except TypeError as error:
        line = inspect.getsourcelines(function)[1] if inspect.isfunction(function) else "?"
        raise SubmissionError(
            f"{path}:{line}: {function.__name__}() does not take AlgoPerf's arguments ({', '.join(args)}): {error}"
        ) from None


def _algoperf_form(module: ModuleType, path: Path) -> Submission:
    missing = [name for name in ALGOPERF_REQUIRED if not callable(getattr(module, name, None))]
    if missing:
        raise SubmissionError(f"{path}: missing required function(s): {', '.join(missing)}")
    _check_signature(path, module.init_optimizer_state, INIT_OPTIMIZER_ARGS)
    _check_signature(path, module.update_params, UPDATE_PARAMS_ARGS)
    prepare = getattr(module, "prepare_for_eval", None)
    if prepare is not None:
        _check_signature(path, prepare, PREPARE_FOR_EVAL_ARGS)
    selection = getattr(module, "data_selection", None) or default_data_selection
    _check_signature(path, selection, DATA_SELECTION_ARGS)
    return Submission(
        path=path,
        form="algoperf",
        get_batch_size=module.get_batch_size,
        init_optimizer_state=module.init_optimizer_state,
        update_params=module.update_params,
        data_selection=selection,
        prepare_for_eval=prepare,
        update_params_takes_train_state="train_state" in inspect.signature(module.update_params).parameters,
        per_step_hyperparameters=tuple(getattr(module, PER_STEP_DECLARATION, ())),
    )


def default_data_selection(
    workload: Any,
    input_queue: Any,
    optimizer_state: Any,
    current_param_container: Any,
    model_state: Any,
    hyperparameters: Any,
    global_step: int,
    rng: Any,
) -> dict[str, torch.Tensor]:
    """AlgoPerf's default: the next batch of the input queue."""
    return next(input_queue)


def _native_form(module: ModuleType, path: Path) -> Submission:
    make_optimizer = module.make_optimizer
    _check_signature(path, make_optimizer, ("params", "hyperparameters", "workload"))

    def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
        made = make_optimizer(
            params=list(model_params.parameters()), hyperparameters=hyperparameters, workload=workload
        )
        optimizer, scheduler = made if isinstance(made, tuple) else (made, None)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise SubmissionError(
                f"{path}: make_optimizer must return a torch.optim.Optimizer "
                f"(or (optimizer, lr_scheduler)), not {type(optimizer).__name__}"
            )
        return {"optimizer": optimizer, "scheduler": scheduler}

    def update_params(
        workload, current_param_container, current_params_types, model_state, hyperparameters,
        batch, loss_type, optimizer_state, eval_results, global_step, rng,
    ):  # fmt: skip
        model = current_param_container
        optimizer = optimizer_state["optimizer"]
        optimizer.zero_grad(set_to_none=True)
        logits, new_model_state = workload.model_fn(
            model, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=True
        )
        losses = workload.loss_fn(
            batch["targets"],
            logits,
            batch.get("weights"),
            label_smoothing=hyperparameters.get("label_smoothing", 0.0),
        )
        loss = losses["summed"] / losses["n_valid_examples"]
        loss_value = loss.item()  # one scalar read; the runner synchronises the device anyway
        if not math.isfinite(loss_value):
            raise DivergedError(f"training loss is {loss_value} at step {global_step}")
        loss.backward()
        grad_clip = hyperparameters.get("grad_clip")
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=grad_clip)
        optimizer.step()
        if optimizer_state["scheduler"] is not None:
            optimizer_state["scheduler"].step()
        return optimizer_state, model, new_model_state

    return Submission(
        path=path,
        form="native",
        get_batch_size=getattr(module, "get_batch_size", None),
        init_optimizer_state=init_optimizer_state,
        update_params=update_params,
        data_selection=default_data_selection,
        prepare_for_eval=None,
        update_params_takes_train_state=False,
        per_step_hyperparameters=NATIVE_PER_STEP,
    )


def as_hyperparameters(values: Mapping[str, Any] | None) -> Hyperparameters:
    return values if isinstance(values, Hyperparameters) else Hyperparameters(values)
