"""A submission file checked without importing it (and without torch), so that a broken file is
reported in well under a second, and the parent process never runs submission code: trials
import the file in their own processes.
"""

from __future__ import annotations

import ast
from pathlib import Path

from algobench.errors import SubmissionError

SUBMISSION_FILE = "submission.py"
ALGOPERF_REQUIRED = ("get_batch_size", "init_optimizer_state", "update_params")
NATIVE_REQUIRED = ("make_optimizer",)


def resolve_submission_path(path: str | Path) -> Path:
    """The submission file: ``path`` itself, or ``path/submission.py`` for a baseline's folder."""
    path = Path(path).resolve()
    if path.is_dir():
        inside = path / SUBMISSION_FILE
        if not inside.is_file():
            raise SubmissionError(f"{path} is a folder with no {SUBMISSION_FILE} in it; pass the submission file")
        return inside
    if not path.exists():
        raise SubmissionError(f"submission file not found: {path}")
    if not path.is_file():
        raise SubmissionError(f"{path} is not a regular file")
    return path


def check_submission_file(path: str | Path) -> Path:
    """Parse the file and check that it defines one submission form; returns its resolved path.

    Raises ``SubmissionError`` naming file and line for a syntax error, a file that is not
    text, or one that defines neither form's functions at its top level.
    """
    path = resolve_submission_path(path)
    try:
        source = path.read_bytes().decode()
    except (OSError, UnicodeDecodeError) as error:
        raise SubmissionError(f"{path}: cannot be read as Python source: {error}") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        raise SubmissionError(f"{path}:{error.lineno}: syntax error: {error.msg}") from None
    names = _top_level_names(tree)
    if all(name in names for name in ALGOPERF_REQUIRED) or all(name in names for name in NATIVE_REQUIRED):
        return path
    partly = [name for name in ALGOPERF_REQUIRED if name in names]
    if partly:
        missing = [name for name in ALGOPERF_REQUIRED if name not in names]
        raise SubmissionError(f"{path}: missing required function(s): {', '.join(missing)}")
    raise SubmissionError(
        f"{path}: no submission functions found: an AlgoPerf-form file defines "
        f"{', '.join(ALGOPERF_REQUIRED)} (optionally prepare_for_eval, data_selection); "
        f"a native file defines make_optimizer(params, hyperparameters, workload)"
    )


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names bound at the module's top level (defs, assignments, imports), conditionals included."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names
