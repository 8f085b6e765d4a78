"""Shared fixtures: a per-session data cache, and helpers that write submission files."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = REPO / "submissions"


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated datasets go to one cache per test session unless the user set one."""
    if os.environ.get("ALGOBENCH_CACHE_DIR"):
        return Path(os.environ["ALGOBENCH_CACHE_DIR"])
    path = tmp_path_factory.mktemp("data-cache")
    os.environ["ALGOBENCH_CACHE_DIR"] = str(path)
    return path


@pytest.fixture
def write_submission(tmp_path: Path):
    """Write ``source`` (dedented) as ``<tmp>/<name>/submission.py`` and return its path."""

    def write(source: str, name: str = "custom", search_space: str | None = None) -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "submission.py"
        path.write_text(textwrap.dedent(source).lstrip())
        if search_space is not None:
            (folder / "tuning_search_space.json").write_text(search_space)
        return path

    return write


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A real Ray for the ``ray`` tests: the head at $RAY_ADDRESS (CI starts one with ``ray start
    --head``), else a local Ray started for this session. With ALGOBENCH_REQUIRE_RAY=1 (CI, once
    its head is up) a head that does not answer fails the tests instead of skipping them."""
    ray = pytest.importorskip("ray")
    address = os.environ.get("RAY_ADDRESS")
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        else:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    except (ConnectionError, RuntimeError) as error:
        if os.environ.get("ALGOBENCH_REQUIRE_RAY") == "1":
            pytest.fail(f"ALGOBENCH_REQUIRE_RAY=1 but no Ray answers at {address}: {error}")
        pytest.skip(f"no Ray answers at {address}: {error}")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
