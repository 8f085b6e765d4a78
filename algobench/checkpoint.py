"""A trial's checkpoint on disk: written atomically, with the previous one kept as a fallback.

A checkpoint that cannot be read (truncated by a full disk, damaged by hand) is never fatal and
never silent: it is set aside as ``checkpoint.pt.corrupt``, the previous good checkpoint is used
if there is one, and the caller records what happened.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from algobench.results import atomic_write_bytes

PREVIOUS_SUFFIX = ".prev"
CORRUPT_SUFFIX = ".corrupt"


class CorruptCheckpointError(Exception):
    """Neither the checkpoint nor its predecessor could be read; both were set aside."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    if path.exists():
        os.replace(path, _previous(path))
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The newest readable checkpoint and a note when it was not ``path`` itself.

    Returns (None, None) when the trial has no checkpoint yet, (state, None) normally, and
    (state or None, note) after setting a corrupt file aside.
    """
    previous = _previous(path)
    if not path.exists():
        if previous.exists():  # killed between rotating and writing: the previous one is current
            return _read(previous), None
        return None, None
    try:
        return _read(path), None
    except Exception as error:  # torch raises RuntimeError, EOFError, pickle errors, ...
        problem = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    aside = path.with_name(path.name + CORRUPT_SUFFIX)
    os.replace(path, aside)
    unreadable = f"{path} could not be read ({problem}); set aside as {aside.name}"
    if previous.exists():
        try:
            state = _read(previous)
        except Exception:
            os.replace(previous, previous.with_name(previous.name + CORRUPT_SUFFIX))
        else:
            step = getattr(state.get("bookkeeping"), "global_step", "?")
            return state, f"{unreadable}, resumed from {previous.name} at step {step}"
    return None, f"{unreadable}, the trial restarts from step 0"


def _read(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def _previous(path: Path) -> Path:
    return path.with_name(path.name + PREVIOUS_SUFFIX)
