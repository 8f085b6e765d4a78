"""The learned rules judged in and out of their meta-training distribution (Open-L2O's standard).

In distribution: held-out tasks of the meta-training family (seeds and widths training never
drew); each method trains each task on the same batches; final full-data training loss and the
steps needed to reach the loss that Adam with the best learning rate of a grid (per task)
reached at its end. Methods: the shipped l2o_mlp, l2o_lstm, l2o_schedule, Adam (grid), and the
NAdamW baseline's self-tuning defaults (submissions/nadamw, its own code).

Out of distribution: the step time of each shipped rule against the AdamW baseline on each suite
workload (cpu scale), the submissions stepping in turn so that the machine's drift hits all alike.

The learned schedule's choices on mnist1d beside the schedule PBT found there (``--pbt-dir``, an
``algobench tune`` experiment on mnist1d) go to docs/l2o_schedule.png.

    python benchmarks/bench_l2o.py [--tasks 12] [--skip-suite] [--pbt-dir DIR] [--out bench_l2o.json]
    python benchmarks/bench_l2o.py --skip-tasks [--workloads W ...] [--rules R ...] [--per-tensor] [--steps 30]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from algobench.hyperparameters import Hyperparameters
from algobench.l2o.optim import LearnedOptimizer, PerTensorOptimizer, ScheduledAdamW
from algobench.l2o.plots import plot_schedules
from algobench.l2o.tasks import Task, TaskSpec, build_model, sample_task
from algobench.l2o.weights import load_rule
from algobench.submission import load_submission
from algobench.workloads import get_workload

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "submissions"
ADAM_GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
RECORD_EVERY = 5
SUITE = ("image_cnn", "image_vit", "lm", "translation", "click_through", "mri", "molecules", "speech")
RULES = ("l2o_mlp", "l2o_lstm", "l2o_schedule")


# --- in distribution ---------------------------------------------------------------------------
def train_curve(spec_: TaskSpec, make: Callable[[list[torch.nn.Parameter], int], Any], kind: str) -> list[float]:
    """Full-data training loss every RECORD_EVERY steps of one run (inf once it diverged)."""
    task = Task(spec_)
    model = build_model(spec_)
    params = list(model.parameters())
    optimizer = make(params, spec_.length)
    generator = task.batch_generator()
    curve = []
    for step in range(spec_.length + 1):
        if step % RECORD_EVERY == 0 or step == spec_.length:
            with torch.no_grad():
                value = float(torch.nn.functional.cross_entropy(model(task.x), task.y))
            curve.append(value if math.isfinite(value) else math.inf)
            if not math.isfinite(value):
                break
        if step == spec_.length:
            break
        idx = task.batch_indices(generator)
        loss = torch.nn.functional.cross_entropy(model(task.x[idx]), task.y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        try:
            optimizer.step(float(loss.detach())) if kind == "schedule" else optimizer.step()
        except Exception:  # a learned rule's DivergedError: the run ends diverged
            curve.append(math.inf)
            break
    return curve


def nadamw_maker() -> Callable:
    submission = load_submission(SUBMISSIONS / "nadamw" / "submission.py")

    class Hint:
        def __init__(self, step_hint: int) -> None:
            self.step_hint = step_hint

    class Wrapper:
        def __init__(self, params, length):
            module = torch.nn.Module()
            module.params = torch.nn.ParameterList(params)
            self.state = submission.init_optimizer_state(Hint(length), module, None, Hyperparameters({}), None)

        def zero_grad(self, set_to_none=True):
            self.state["optimizer"].zero_grad(set_to_none=set_to_none)

        def step(self):
            self.state["optimizer"].step()
            self.state["scheduler"].step()

    return Wrapper


def in_distribution(num_tasks: int, seed: int) -> dict[str, Any]:
    rules = {name: load_rule(SUBMISSIONS / name / "weights.pt", name.removeprefix("l2o_")) for name in RULES}
    makers: dict[str, tuple[Callable, str]] = {
        "l2o_mlp": (lambda p, n: LearnedOptimizer(p, rules["l2o_mlp"], n), "rule"),
        "l2o_lstm": (lambda p, n: LearnedOptimizer(p, rules["l2o_lstm"], n), "rule"),
        "l2o_schedule": (lambda p, n: ScheduledAdamW(p, rules["l2o_schedule"], n), "schedule"),
        "nadamw_defaults": (nadamw_maker(), "rule"),
    }
    for lr in ADAM_GRID:
        makers[f"adam_{lr:g}"] = (lambda p, n, lr=lr: torch.optim.Adam(p, lr=lr), "rule")
    rng = np.random.default_rng([seed, 424242])
    rows = []
    for i in range(num_tasks):
        task = sample_task(rng, held_out=True)
        curves = {name: train_curve(task, make, kind) for name, (make, kind) in makers.items()}
        best_lr = min(ADAM_GRID, key=lambda lr: curves[f"adam_{lr:g}"][-1])
        curves["adam_tuned"] = curves[f"adam_{best_lr:g}"]
        reference = curves["adam_tuned"][-1]
        row = {"task": task.to_dict(), "adam_best_lr": best_lr, "curves": curves}
        for name, curve in curves.items():
            hit = next((k for k, v in enumerate(curve) if v <= reference), None)
            row[f"{name}/final"] = curve[-1] if len(curve) > task.length // RECORD_EVERY else math.inf
            row[f"{name}/steps_to_adam"] = None if hit is None else min(hit * RECORD_EVERY, task.length)
        rows.append(row)
        print(f"task {i + 1}/{num_tasks} {task.kind} {task.widths} {task.activation} len {task.length}: "
              + ", ".join(f"{m} {row[f'{m}/final']:.4f}" for m in (*RULES, "adam_tuned", "nadamw_defaults")),
              flush=True)  # fmt: skip
    return {"rows": rows}


def summarise_in_distribution(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [
        "| method | median final loss | wins vs tuned Adam (final loss) | reached tuned Adam's final loss | "
        "median steps to it (share of the run) |",
        "|---|---|---|---|---|",
    ]
    for name in (*RULES, "nadamw_defaults", "adam_tuned"):
        finals = [r[f"{name}/final"] for r in rows]
        wins = sum(r[f"{name}/final"] < r["adam_tuned/final"] for r in rows)
        reached = [r for r in rows if r[f"{name}/steps_to_adam"] is not None]
        shares = [r[f"{name}/steps_to_adam"] / r["task"]["length"] for r in reached]
        lines.append(
            f"| {name} | {statistics.median(finals):.4f} | {wins}/{len(rows)} | {len(reached)}/{len(rows)} | "
            f"{statistics.median(shares):.2f} |"
            if shares
            else f"| {name} | {statistics.median(finals):.4f} | {wins}/{len(rows)} | 0/{len(rows)} | - |"
        )
    return "\n".join(lines)


def plot_in_distribution(result: dict[str, Any], path: Path, count: int = 6) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"][:count]
    fig, axes = plt.subplots(2, (len(rows) + 1) // 2, figsize=(12, 6), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        for name, style in (("l2o_mlp", "C0"), ("l2o_lstm", "C1"), ("l2o_schedule", "C2"),
                            ("adam_tuned", "k--"), ("nadamw_defaults", "C3:")):  # fmt: skip
            curve = [v for v in row["curves"][name] if math.isfinite(v)]
            ax.plot(np.arange(len(curve)) * RECORD_EVERY, curve, style, label=name, lw=1.2)
        t = row["task"]
        ax.set_title(f"{t['kind']} {t['widths']} {t['activation']}", fontsize=8)
        ax.set_yscale("log")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("step")
    fig.supylabel("full-data training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- out of distribution: step time ------------------------------------------------------------
PER_TENSOR = "/per-tensor"  # suffix: the rule stepped tensor by tensor, as before its step was fused


def stepper(name: str, workload_name: str) -> Callable[[], float]:
    workload = get_workload(workload_name)
    submission = load_submission(SUBMISSIONS / name.removesuffix(PER_TENSOR) / "submission.py")
    torch.manual_seed(0)
    model, state = workload.init_model_fn(0)
    hp = Hyperparameters({})
    optimizer_state = submission.init_optimizer_state(workload, model, state, hp, None)
    if name.endswith(PER_TENSOR):
        rule = optimizer_state["optimizer"].rule
        optimizer_state["optimizer"] = PerTensorOptimizer(model.parameters(), rule, workload.step_hint)
    queue = workload._build_input_queue(0, "train", None, submission.batch_size(workload, hp))
    box = {"state": state, "opt": optimizer_state, "model": model, "step": 0}

    def step() -> float:
        batch = next(queue)
        start = time.perf_counter()
        box["opt"], box["model"], box["state"] = submission.update_params(
            workload, box["model"], workload.model_params_types, box["state"], hp, batch, workload.loss_type,
            box["opt"], [], box["step"], None,
        )  # fmt: skip
        box["step"] += 1
        return time.perf_counter() - start

    return step


def step_times(
    workloads: tuple[str, ...], steps: int, rules: tuple[str, ...] = RULES, per_tensor: bool = False
) -> dict[str, dict[str, float]]:
    """Median step time of AdamW and each rule (and, with ``per_tensor``, the MLP and LSTM rules
    stepped tensor by tensor) per workload, all stepping in turn."""
    names = ("adamw", *rules, *(r + PER_TENSOR for r in rules if per_tensor and r != "l2o_schedule"))
    result = {}
    for workload_name in workloads:
        steppers = {n: stepper(n, workload_name) for n in names}
        times: dict[str, list[float]] = {n: [] for n in names}
        for i in range(3 + steps):
            for n in names:
                t = steppers[n]()
                if i >= 3:
                    times[n].append(t)
        medians = {n: statistics.median(v) for n, v in times.items()}
        result[workload_name] = medians
        print(f"{workload_name}: " + ", ".join(f"{n} {1e3 * m:.1f} ms" for n, m in medians.items()), flush=True)
    return result


def summarise_step_times(result: dict[str, dict[str, float]]) -> str:
    rules = [n for n in next(iter(result.values())) if n != "adamw"]
    lines = ["| workload | AdamW step | " + " | ".join(f"{n} / AdamW" for n in rules) + " |",
             "|---|---|" + "---|" * len(rules)]  # fmt: skip
    for workload_name, medians in result.items():
        ratios = " | ".join(f"{medians[n] / medians['adamw']:.2f}x" for n in rules)
        lines.append(f"| {workload_name} | {1e3 * medians['adamw']:.1f} ms | {ratios} |")
    return "\n".join(lines)


# --- the learned schedule beside PBT's, on mnist1d ---------------------------------------------
def learned_schedule_trace(workload_name: str, steps: int) -> list[tuple[int, float]]:
    workload = get_workload(workload_name)
    submission = load_submission(SUBMISSIONS / "l2o_schedule" / "submission.py")
    torch.manual_seed(0)
    model, state = workload.init_model_fn(0)
    hp = Hyperparameters({})
    opt = submission.init_optimizer_state(workload, model, state, hp, None)
    queue = workload._build_input_queue(0, "train", None, submission.batch_size(workload, hp))
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        for step in range(steps):
            opt, model, state = submission.update_params(
                workload, model, workload.model_params_types, state, hp, next(queue), workload.loss_type, opt, [],
                step, None,
            )  # fmt: skip
    return [(s, lr) for s, lr, _ in opt["optimizer"].trace], workload.step_hint


def pbt_best_schedule(pbt_dir: Path, step_hint: int) -> list[tuple[int, float]]:
    """The effective learning rate (base rate x warmup-cosine factor) of the PBT member with the best
    final validation accuracy, from its hparams.json schedule."""
    from algobench.schedules import warmup_cosine

    best, best_acc = None, -1.0
    for trial in pbt_dir.glob("*_pbt/study_0/mnist1d_pytorch/trial_*"):
        with open(trial / "eval_measurements.csv") as f:
            rows = list(csv.DictReader(f))
        if rows and float(rows[-1]["validation/accuracy"]) > best_acc:
            best, best_acc = trial, float(rows[-1]["validation/accuracy"])
    schedule = json.loads((best / "hparams.json").read_text())["schedule"]
    last = int(rows[-1]["global_step"]) if rows else step_hint
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    factor = warmup_cosine(optimizer, 0.05 * step_hint, step_hint).lr_lambdas[0]
    points, base = [], None
    changes = {int(c["global_step"]): c["hyperparameters"].get("learning_rate") for c in schedule}
    for step in range(0, last + 1, 10):
        for s in [s for s in changes if s <= step]:
            base = changes[s] if changes[s] is not None else base
        points.append((step, base * factor(step)))
    return points, best.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per submission and workload")
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--workloads", nargs="+", choices=SUITE, default=SUITE, help="suite workloads to time")
    parser.add_argument("--rules", nargs="+", choices=RULES, default=RULES, help="learned rules to time")
    parser.add_argument("--per-tensor", action="store_true", help="also time the MLP/LSTM rules stepped per tensor")
    parser.add_argument("--skip-tasks", action="store_true")
    parser.add_argument("--pbt-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench_l2o.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    record: dict[str, Any] = {"torch_threads": 1}
    if not args.skip_tasks:
        record["in_distribution"] = in_distribution(args.tasks, args.seed)
        print(summarise_in_distribution(record["in_distribution"]))
        plot_in_distribution(record["in_distribution"], ROOT / "docs" / "l2o_in_distribution.png")
    if not args.skip_suite:
        record["step_times"] = step_times(tuple(args.workloads), args.steps, tuple(args.rules), args.per_tensor)
        print(summarise_step_times(record["step_times"]))
    if args.pbt_dir is not None:
        learned, step_hint = learned_schedule_trace("mnist1d", 3000)
        pbt, member = pbt_best_schedule(args.pbt_dir, 3000)
        plot_schedules(
            [
                ("l2o_schedule (learned on generated tasks)", learned, "C2-"),
                (f"PBT best member ({member})", pbt, "C0-"),
            ],
            ROOT / "docs" / "l2o_schedule.png",
            title="mnist1d: AdamW learning rate, learned schedule vs PBT",
        )
        record["schedule"] = {"learned": learned, "pbt": pbt}
    args.out.write_text(json.dumps(record, indent=1, default=float))


if __name__ == "__main__":
    main()
