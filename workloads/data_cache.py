"""Generated datasets cached on disk under a content hash of how they were made."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

CACHE_ENV_VAR = "ALGOBENCH_CACHE_DIR"


def cache_dir() -> Path:
    """``$ALGOBENCH_CACHE_DIR``, else ``~/.cache/algobench``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "algobench")


def cached_arrays(
    name: str, recipe: dict[str, Any], generate: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Return ``generate()``'s arrays, generating them only when no cache entry matches ``recipe``.

    ``recipe`` must hold everything the data depends on (seed, sizes, generator version), so a
    change to any of them lands in a new file instead of silently reusing stale data.
    """
    import numpy as np  # here, so that reading the cache directory's name stays light

    digest = hashlib.sha256(json.dumps([name, recipe], sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                return {k: stored[k] for k in stored.files}
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a torn or foreign file: make it anew
    arrays = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return arrays
