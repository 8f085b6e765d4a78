"""Does NAdamW's self-tuning run waste its budget? The same submission with its warm-up + cosine
schedule stretched from ``step_hint`` to ``factor x step_hint`` steps, on the suite under the
self-tuning ruleset (one trial per workload, 1.5x the budget).

Why: here ``step_hint`` is the target-setting runs' length, about 2/3 of the steps that fit in the
external budget (AlgoPerf's ``step_hint`` is about the external budget's steps), so a self-tuning
run of NAdamW, whose schedule spans ``step_hint``, trains its last half or more at a learning rate
of zero. Each factor writes a variant of ``submissions/nadamw`` into ``--out`` (the same file,
called with a workload whose ``step_hint`` is scaled) and runs ``algobench submit`` on it;
resumable (a rerun skips finished trials). Prints the targets each factor reaches and, per
workload, the best validation metric against the target.

    nice -n 10 python benchmarks/bench_self_tuning_horizon.py --factors 1,1.5,2.25 --out DIR   # ~10 min a factor
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANT = '''"""NAdamW (submissions/nadamw) with its schedule over {factor} x step_hint steps: written by
benchmarks/bench_self_tuning_horizon.py."""

import importlib.util

_spec = importlib.util.spec_from_file_location("nadamw_base", {base!r})
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


class _Horizon:
    def __init__(self, step_hint):
        self.step_hint = step_hint


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    horizon = _Horizon(max(int({factor} * workload.step_hint), 1))
    return _base.init_optimizer_state(horizon, model_params, model_state, hyperparameters, rng)


update_params = _base.update_params
prepare_for_eval = _base.prepare_for_eval
get_batch_size = _base.get_batch_size
data_selection = _base.data_selection
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="1.5,2.25", help="schedule lengths, in step_hints")
    parser.add_argument("--workloads", default="suite")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu")
    parser.add_argument("--out", required=True, help="variants and their experiment directories")
    parser.add_argument("--no-nice", dest="nice", action="store_false")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(10)
    from algobench.cli import main as algobench

    out = Path(args.out).resolve()
    base = REPO / "submissions" / "nadamw" / "submission.py"
    table = {}
    for factor in (float(f) for f in args.factors.split(",")):
        name = f"nadamw_horizon_{factor:g}".replace(".", "_")
        variant = out / name / "submission.py"
        variant.parent.mkdir(parents=True, exist_ok=True)
        variant.write_text(VARIANT.format(factor=factor, base=str(base)))
        experiment = out / "runs"
        code = algobench(["submit", str(variant), "--ruleset", "self", "--workloads", args.workloads, "--clock",
                          args.clock, "--experiment-dir", str(experiment), "--quiet"])  # fmt: skip
        if code not in (0, 1):
            return code
        table[factor] = summaries(experiment / name)
    print(json.dumps(table, indent=1))
    (out / "horizon.json").write_text(json.dumps(table, indent=1))
    return 0


def summaries(folder: Path) -> dict:
    rows = {}
    for path in sorted(folder.glob("study_0/*/trial_1/summary.json")):
        summary = json.loads(path.read_text())
        rows[summary["workload"]] = {
            "reached": summary["time_to_target"] is not None,
            "time_to_target": summary["time_to_target"],
            "best": summary["best_validation_metric"],
            "target": summary["validation_target_value"],
            "steps": summary["steps"],
        }
    return {"reached": sum(r["reached"] for r in rows.values()), "workloads": rows}


if __name__ == "__main__":
    sys.exit(main())
