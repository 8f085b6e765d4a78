"""Write a scoring run to a directory: CSV tables, plots (PNG and PDF) and the HTML report.

time_to_targets.csv      submissions x workloads: median runtime over studies (inf: never)
scores.csv               submission, score (and speedup, reference)
ratios.csv               submissions x base workloads: runtime / best (inf beyond max_tau)
performance_profile.csv  submissions x tau: rho(tau)
study_times.csv          per submission, workload and study: the best trial and its time
trials.csv               per trial: time to target and provenance
speedups.csv             with a reference: per-workload and geometric-mean speedups
performance_profile.png/.pdf, workloads/<workload>.png, report.html
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from algobench.scoring.pipeline import ScoreResult


def write_tables(result: ScoreResult, out: Path) -> dict[str, Path]:
    paths = {
        "time_to_targets": out / "time_to_targets.csv",
        "scores": out / "scores.csv",
        "ratios": out / "ratios.csv",
        "performance_profile": out / "performance_profile.csv",
        "study_times": out / "study_times.csv",
        "trials": out / "trials.csv",
    }
    result.times.to_csv(paths["time_to_targets"])
    result.scores.to_csv(paths["scores"])
    result.ratios.to_csv(paths["ratios"])
    result.profiles.to_csv(paths["performance_profile"])
    result.study_times.to_csv(paths["study_times"], index=False)
    result.trials.to_csv(paths["trials"])
    if result.speedups is not None:
        paths["speedups"] = out / "speedups.csv"
        result.speedups.to_csv(paths["speedups"])
    return paths


def write_outputs(result: ScoreResult, out_dir: str | PathLike[str], plots: bool = True) -> dict[str, Path]:
    """Write everything into ``out_dir`` (created if needed); return the paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_tables(result, out)
    if not plots:
        return paths
    from algobench.scoring import plots as plotting
    from algobench.scoring.report import render

    images: dict[str, bytes] = {}
    figure = plotting.performance_profile_figure(result.ratios, result.scores["score"], result.protocol.max_tau)
    images["profile"] = plotting.save(figure, out / "performance_profile", ("png", "pdf"))["png"]
    paths["performance_profile_png"] = out / "performance_profile.png"
    paths["performance_profile_pdf"] = out / "performance_profile.pdf"
    workload_dir = out / "workloads"
    workload_dir.mkdir(exist_ok=True)
    for workload in [*result.ratios.columns, *result.held_out]:
        if (result.trials["workload"] == workload).any():
            figure = plotting.workload_figure(result, workload)
            images[workload] = plotting.save(figure, workload_dir / workload)["png"]
            paths[f"workload/{workload}"] = workload_dir / f"{workload}.png"
    paths["report"] = out / "report.html"
    paths["report"].write_text(render(result, images), encoding="utf-8")
    return paths
