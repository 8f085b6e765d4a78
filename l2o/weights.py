"""A rule's weights on disk: one ``torch.save`` file holding its kind, architecture and tensors,
so that a file made for another architecture is refused with one line naming it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from algobench.errors import AlgobenchError
from algobench.l2o.rules import RULES, Rule

FORMAT = "algobench-l2o-weights-1"


def save_rule(rule: Rule, path: str | Path) -> Path:
    """Write ``rule`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"format": FORMAT, "kind": rule.kind, "config": rule.config(), "state_dict": rule.state_dict()}
    atomic_torch_save(document, path)
    return path


def atomic_torch_save(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_rule(path: str | Path, kind: str) -> Rule:
    """The rule of ``kind`` saved in ``path``; ``AlgobenchError`` naming the file when it is
    missing, unreadable, of another kind, or does not match the architecture it declares."""
    path = Path(path)
    if not path.is_file():
        raise AlgobenchError(f"{path}: learned-rule weights not found")
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise AlgobenchError(f"{path}: not a readable weights file ({type(error).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise AlgobenchError(f"{path}: not an algobench L2O weights file (expected format {FORMAT!r})")
    if document.get("kind") != kind:
        raise AlgobenchError(f"{path}: holds weights of a {document.get('kind')!r} rule, not {kind!r}")
    try:
        rule = RULES[kind](**document["config"])
        rule.load_state_dict(document["state_dict"])
    except (TypeError, RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AlgobenchError(f"{path}: weights do not match the {kind} rule's architecture: {first}") from None
    rule.eval()
    return rule
