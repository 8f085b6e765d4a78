"""The HTML report: self-contained, and really rendered by a browser (headless Chromium).

The browser test keeps a screenshot in ``test-artifacts/scoring_report.png`` (gitignored).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from algobench.scoring import get_protocol, score, write_outputs
from tests.scoring_fixtures.logs import write_trial

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exp")
    plan = {"adam": {"u": 10.0, "v": 40.0}, "sgd <b>": {"u": 20.0, "v": 10.0}, "lion": {"u": 50.0, "v": math.inf}}
    for submission, workloads in plan.items():
        for workload, t in workloads.items():
            for study in range(3):
                evals = [(40.0, 0.7), (80.0, 0.8)] if math.isinf(t) else [(t / 2, 0.8), (t + study, 0.9)]
                write_trial(root, submission, workload, study, 1, evals)
    result = score(root, replace(get_protocol("algobench-v1"), trials_per_study=1))
    return write_outputs(result, tmp_path_factory.mktemp("out"))["report"]


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)  # nothing to fetch: no server, no network
    assert text.count("<img ") == 3 and text.count("data:image/png;base64,") == 3
    assert 'id="scores" class="sortable"' in text and 'id="times"' in text and 'id="runs"' in text
    assert "sgd &lt;b&gt;" in text and "sgd <b>" not in text  # names are escaped
    assert 'data-sort="Infinity">∞' in text


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium); the report was not rendered")
    flags = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600",
    ]  # fmt: skip
    dom = subprocess.run(
        [*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    assert 'data-images="3"' in body.group(1) and 'data-images-loaded="3"' in body.group(1)  # all decoded
    scores = re.search(r'<table id="scores".*?</table>', dom, re.S).group(0)
    assert re.findall(r'<tr><td class="text">([^<]*)</td>', scores) == ["sgd &lt;b&gt;", "adam", "lion"]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "scoring_report.png"
    shot.unlink(missing_ok=True)
    subprocess.run([*flags, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
