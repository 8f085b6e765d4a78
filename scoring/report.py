"""One self-contained HTML report: scores, ratios, runtimes, plots and the provenance of every run.

Everything is inline (plots as base64 PNG, a few lines of CSS and JavaScript), so the file opens
from disk in any browser, with no server and nothing fetched. Tables sort on a click on their
header. After loading, ``<body>`` carries ``data-images`` and ``data-images-loaded`` (how many
images decoded), which the headless-browser test reads.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

import algobench

if TYPE_CHECKING:
    from algobench.scoring.pipeline import ScoreResult

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[data-dir=asc]::after { content: " \\25B2"; } th[data-dir=desc]::after { content: " \\25BC"; }
td.text, th.text { text-align: left; } td.inf { color: #999; }
img { max-width: 100%; border: 1px solid #eee; }
.runs { font-size: 0.8em; } pre { margin: 0; white-space: pre-wrap; text-align: left; }
.problems li { font-family: monospace; font-size: 0.85em; }
"""

SCRIPT = """
function sortTable(th) {
  const table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
  const numeric = th.dataset.type === "number";
  const dir = th.dataset.dir === "asc" ? "desc" : "asc";
  for (const other of th.parentNode.cells) delete other.dataset.dir;
  th.dataset.dir = dir;
  const key = (row) => {
    const cell = row.cells[col], raw = cell.dataset.sort ?? cell.textContent;
    if (!numeric) return raw;
    const value = parseFloat(raw);
    return Number.isNaN(value) ? Infinity : value;
  };
  const rows = Array.from(body.rows);
  const sign = dir === "asc" ? 1 : -1;
  rows.sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * sign; });
  for (const row of rows) body.appendChild(row);
}
document.querySelectorAll("table.sortable th").forEach((th) => th.addEventListener("click", () => sortTable(th)));
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.dataset.images = images.length;
  document.body.dataset.imagesLoaded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
});
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float, digits: int = 4) -> tuple[str, str]:
    """(shown text, sort key): infinity sorts last and reads as ∞; NaN (no runs) as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–", "NaN"
    if math.isinf(value):
        return "∞", "Infinity"
    return f"{value:.{digits}f}", repr(float(value))


def table(frame: pd.DataFrame, table_id: str, text_columns: Sequence[str] = (), digits: int = 4) -> str:
    """A sortable HTML table of ``frame`` (its index becomes the first column)."""
    frame = frame.reset_index()
    head = "".join(
        f'<th class="text" data-type="text">{_e(c)}</th>'
        if c in text_columns
        else f'<th data-type="number">{_e(c)}</th>'
        for c in frame.columns
    )
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            if column in text_columns:
                shown = value if column == "hparams" else _e(value)  # hparams: already escaped HTML
                cells.append(f'<td class="text">{shown}</td>')
            else:
                shown, key = _number(float(value), digits)
                css = ' class="inf"' if shown in ("∞", "–") else ""
                cells.append(f'<td{css} data-sort="{key}">{shown}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    body = "".join(rows)
    return (
        f'<div class="wide"><table id="{table_id}" class="sortable">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _runs_table(result: ScoreResult) -> str:
    runs = result.trials.copy()
    runs["hparams"] = [
        f"<details><summary>show</summary><pre>{_e(h)}</pre></details>" if h else "" for h in runs["hparams"]
    ]
    columns = [
        "submission", "workload", "study", "trial", "status", "time_to_target", "num_evals", "ruleset",
        "budget_sec", "calibration_factor", "machine", "path", "hparams",
    ]  # fmt: skip
    runs = runs[columns].sort_values(["submission", "workload", "study", "trial"]).set_index("submission")
    text = ("submission", "workload", "status", "ruleset", "machine", "path", "hparams")
    return table(runs, "runs", text_columns=text, digits=2)


def render(result: ScoreResult, images: Mapping[str, bytes]) -> str:
    """The report as one HTML string; ``images`` maps "profile" and each workload to PNG bytes."""
    protocol, rules = result.protocol, result.protocol.rules
    scores = result.scores.drop(columns=["reference"], errors="ignore").join(result.ratios.add_prefix("ratio/"))
    scores = scores.sort_values("score", ascending=False, kind="stable")
    times = result.times.copy()
    workloads = [w for w in images if w != "profile"]
    held_out = ", ".join(f"{v} (for {b})" for v, b in result.held_out.items()) or "none"
    reference = f"; speedups are against <b>{_e(result.reference)}</b>" if result.reference else ""
    problems = "".join(f"<li>{_e(p)}</li>" for p in result.problems) or "<li>none</li>"
    workload_figures = "".join(
        f'<figure id="workload-{_e(w)}">{_image(images[w], f"{w}: validation metric against time")}'
        f"<figcaption>{_e(w)}</figcaption></figure>"
        for w in workloads
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>algobench scores ({_e(protocol.name)})</title>
<style>{CSS}</style></head>
<body>
<h1>Benchmark scores</h1>
<p class="meta">Protocol <b>{_e(protocol.name)}</b>, rules <b>{_e(rules.name)}</b> — {_e(protocol.description)}.
{len(result.scores)} submissions, {result.ratios.shape[1]} scored workloads, {len(result.trials)} trials;
held-out variants: {_e(held_out)}{reference}. algobench {_e(algobench.__version__)}.</p>
<p class="meta">Score = area under ρ(τ) on [1, {protocol.max_tau:g}] / {protocol.max_tau - 1:g}
({_e(rules.integration)} integration); per study the {_e(rules.trial_selection.replace("_", " "))} trial;
budget {"enforced" if rules.enforce_budget else "not checked"}; ratios above {protocol.max_tau:g} count as ∞.</p>
<h2>Scores and ratios to the best submission</h2>
{table(scores, "scores", text_columns=("submission",))}
<h2>Performance profiles</h2>
{_image(images["profile"], "performance profiles")}
<h2>Runtime per workload (median over studies, seconds)</h2>
{table(times, "times", text_columns=("submission",), digits=1)}
<h2>Workloads</h2>
{workload_figures}
<h2>Runs</h2>
<div class="runs">{_runs_table(result)}</div>
<h2>Problems in the logs</h2>
<ul class="problems">{problems}</ul>
<script>{SCRIPT}</script>
</body></html>
"""
