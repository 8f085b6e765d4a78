"""Per base workload: data generation time (fresh cache), training step time and evaluation
time on this machine, as a Markdown table. Targets and where they came from are read from
each workload's targets file.

    python benchmarks/bench_workloads.py [--workloads image_cnn,lm] [--steps 15]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from algobench.workloads import get_workload, workload_class, workload_info, workload_names
from algobench.workloads.calibration import reference_step_seconds
from algobench.workloads.registry import load_targets


def measure(name: str, steps: int) -> dict[str, float]:
    start = time.perf_counter()
    workload = get_workload(name)
    workload.splits  # noqa: B018 - generate (the cache directory is fresh)
    generation = time.perf_counter() - start
    step = reference_step_seconds(name, steps=steps)
    model, state = workload.init_model_fn(0)
    start = time.perf_counter()
    workload.eval_model(workload.eval_batch_size, model, state, 0, None, None, 0)
    evaluation = time.perf_counter() - start
    return {"generation": generation, "step": step, "eval": evaluation, "train": workload.num_train_examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=None, help="comma-separated (default: every generated base workload)")
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    names = (
        args.workloads.split(",")
        if args.workloads
        else [n for n in workload_names() if workload_info(n).variant is None and not workload_class(n).needs_data_dir]
    )
    print("| workload | mirrors | train examples | data generation s | step ms | eval s | valid target | targets |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["ALGOBENCH_CACHE_DIR"] = cache
        for name in names:
            m = measure(name, args.steps)
            info, targets = workload_info(name), load_targets(name)
            print(
                f"| {name} | {info.mirrors} | {m['train']} | {m['generation']:.1f} | {m['step'] * 1000:.1f} | "
                f"{m['eval']:.2f} | {targets.validation_target_value:g} ({info.target_metric_name}) | "
                f"{targets.provenance.get('method', '?')} |"
            )


if __name__ == "__main__":
    main()
