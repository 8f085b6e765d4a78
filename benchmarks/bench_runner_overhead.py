"""Runner overhead: algobench's timed loop against a plain PyTorch loop doing the same steps.

Both sides train the same model on the same batches with the same optimizer and schedule
(the AdamW baseline, native form); the runner evaluates only once, at the end, and that
evaluation is subtracted. Repetitions alternate (plain, runner, plain, …) so that drift of
this shared machine hits both sides alike; the ratio of medians is reported.

    python benchmarks/bench_runner_overhead.py [--workload mnist1d] [--steps 1500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from algobench.hyperparameters import Hyperparameters
from algobench.runner import DATA_SELECTION, RunConfig, TrialRunner, step_key
from algobench.schedules import warmup_cosine
from algobench.submission import load_submission
from algobench.workloads import get_workload

ADAMW = Path(__file__).resolve().parent.parent / "submissions" / "adamw" / "submission.py"
HP = {"learning_rate": 2e-3, "one_minus_beta1": 0.1, "beta2": 0.999, "weight_decay": 0.05, "warmup_factor": 0.05}


def plain_loop(workload_name: str, steps: int, seed: int) -> float:
    """What a person would write by hand: no clocks, no checks, no bookkeeping."""
    workload = get_workload(workload_name)
    torch.manual_seed(seed)
    model, _ = workload.init_model_fn(step_key(seed, 0, 3))
    batches = workload._build_input_queue(step_key(seed, 0, DATA_SELECTION), "train", None, workload.default_batch_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=HP["learning_rate"], betas=(0.9, 0.999), weight_decay=HP["weight_decay"]
    )
    scheduler = warmup_cosine(optimizer, HP["warmup_factor"] * workload.step_hint, workload.step_hint)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(batches)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(batch["inputs"]), batch["targets"])
        loss.backward()
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - start


def runner_loop(workload_name: str, steps: int, seed: int) -> tuple[float, float]:
    """(wall time of the run less its one evaluation, submission time on the runner's clock)."""
    workload = get_workload(workload_name)
    config = RunConfig(budget_sec=1e9, eval_period_sec=1e9, seed=seed, max_steps=steps, stop_on_target=False)
    runner = TrialRunner(workload, load_submission(ADAMW), Hyperparameters(HP), config)
    start = time.perf_counter()
    runner.run()
    wall = time.perf_counter() - start - runner.state.clocks.eval
    return wall, runner.state.clocks.submission


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist1d")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    _ = get_workload(args.workload).splits  # generate/cache the data before timing anything
    plain_loop(args.workload, 50, 0), runner_loop(args.workload, 50, 0)  # warm-up
    plain, wall, submission = [], [], []
    for repeat in range(args.repeats):
        plain.append(plain_loop(args.workload, args.steps, repeat))
        w, s = runner_loop(args.workload, args.steps, repeat)
        wall.append(w)
        submission.append(s)
    p, w, s = statistics.median(plain), statistics.median(wall), statistics.median(submission)
    print(f"workload={args.workload} steps={args.steps} repeats={args.repeats} torch_threads={torch.get_num_threads()}")
    print(
        f"plain loop      median {p:.3f} s  ({1e3 * p / args.steps:.3f} ms/step)  runs {[round(x, 3) for x in plain]}"
    )
    print(f"runner (wall)   median {w:.3f} s  ratio {w / p:.4f}  runs {[round(x, 3) for x in wall]}")
    print(f"runner (clock)  median {s:.3f} s  ratio {s / p:.4f}")


if __name__ == "__main__":
    main()
