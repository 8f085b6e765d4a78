"""Native PBT against PBT on Ray Tune: the same population, seeds, interval and workload.

    nice -n 10 python benchmarks/bench_ray_pbt.py                                   # ~10 min on 2 cores
    nice -n 10 python benchmarks/bench_ray_pbt.py --workloads digits_mlp,mnist1d --population 4

For each workload, ``algobench tune --tuner pbt`` runs twice on one experiment setting, natively
and with ``--backend ray`` (a local Ray started by the command), one after the other, at the
tiny scale with a fixed step schedule (``max_steps``, ``interval``, ``eval_every``), so both do
the same training work. Reported per workload: the wall time of each command, the members' own
compute (segments' submission time), each run's overhead (its ``overhead.json``: slot time not
spent in segments), the best fitness each reaches (the members' best validation metric) and
native / Ray wall time. Ray's start-up (``ray.init`` of a local Ray, then ``ray.shutdown``) is
measured on its own. Writes ``<root>/bench_ray_pbt.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_tune(root: Path, workload: str, backend: str, args: argparse.Namespace) -> dict:
    experiment = root / f"{workload}_{backend}"
    command = [
        sys.executable, "-m", "algobench.cli", "tune", str(REPO / "submissions/adamw/submission.py"),
        "--tuner", "pbt", "--workloads", workload, "--scale", args.scale, "--experiment-dir", str(experiment),
        "--population", str(args.population), "--interval", str(args.interval), "--max-steps", str(args.max_steps),
        "--eval-every", str(args.eval_every), "--seed", "0", "--quiet", "--no-stop-on-target", "--threads", "1",
        "--backend", backend,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # Ray: a local one, started by the command
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    tuning = experiment / "tuning" / workload / "study_0"
    overhead = json.loads((tuning / "overhead.json").read_text())
    segments = [json.loads(line) for line in (tuning / "segments.jsonl").read_text().splitlines()]
    summaries = [json.loads(p.read_text()) for p in experiment.glob("*/study_0/*/trial_*/summary.json")]
    metrics = [s["best_validation_metric"] for s in summaries if s.get("best_validation_metric") is not None]
    direction = summaries[0]["metric_direction"] if summaries else "max"
    best = (max if direction == "max" else min)(metrics) if metrics else None
    return {
        "wall_sec": wall,
        "compute_sec": sum(s["own_compute"] for s in segments),
        "segments_wall_sec": overhead["busy_sec"],
        "overhead_sec": overhead["idle_sec"] + overhead["decision_sec"] + overhead["fork_sec"],
        "best_metric": best,
        "statuses": sorted(s["status"] for s in summaries),
    }


def ray_startup_sec() -> float:
    code = (
        "import time, ray\nt = time.perf_counter()\n"
        "ray.init(address='local', num_cpus=2, include_dashboard=False, log_to_driver=False)\n"
        "up = time.perf_counter() - t\nray.shutdown()\nprint(up)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="digits_mlp,mnist1d,image_cnn")
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--interval", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--root", default="bench_ray_pbt_runs")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    load_before = os.getloadavg()
    report: dict = {"settings": vars(args), "load_before": load_before, "ray_startup_sec": ray_startup_sec()}
    print(f"Ray start-up (local, 2 CPUs): {report['ray_startup_sec']:.1f} s; load average before: {load_before}")
    header = f"{'workload':<12} {'backend':<7} {'wall s':>7} {'compute s':>9} {'overhead s':>10} {'best metric':>11}"
    print(header)
    for workload in [w.strip() for w in args.workloads.split(",") if w.strip()]:
        rows = {backend: run_tune(root, workload, backend, args) for backend in ("native", "ray")}
        for backend, row in rows.items():
            best = "-" if row["best_metric"] is None else f"{row['best_metric']:.4f}"
            print(
                f"{workload:<12} {backend:<7} {row['wall_sec']:>7.1f} {row['compute_sec']:>9.2f} "
                f"{row['overhead_sec']:>10.1f} {best:>11}"
            )
        ratio = rows["native"]["wall_sec"] / rows["ray"]["wall_sec"]
        print(f"{workload:<12} native / ray wall time: {ratio:.2f}")
        report[workload] = {**rows, "native_over_ray_wall": ratio}
    report["load_after"] = os.getloadavg()
    print(f"load average after: {report['load_after']}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "bench_ray_pbt.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
