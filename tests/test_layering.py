"""Dependencies point down (DESIGN.md, Layout): the core defines the contracts and imports none of
the packages built on it. Only ``algobench/cli.py``, the command line's composition root, may
reach them, lazily inside its functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "algobench"
ABOVE = ("workloads", "tuning", "scoring", "slurm", "l2o")  # under ``algobench.``
COMPOSITION_ROOTS = {"cli.py"}


def core_files() -> list[Path]:
    files = [*CORE.glob("*.py"), *CORE.glob("executors/*.py")]
    return sorted(f for f in files if f.relative_to(CORE).as_posix() not in COMPOSITION_ROOTS)


def _absolute(node: ast.ImportFrom, path: Path, core: Path) -> str:
    """The module an ``ImportFrom`` names, with a relative import resolved against ``path``."""
    if not node.level:
        return node.module or ""
    package = ["algobench", *path.relative_to(core).parent.parts]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _above(module: str) -> bool:
    parts = module.split(".")
    return len(parts) >= 2 and parts[0] == "algobench" and parts[1] in ABOVE


def upward_imports(path: Path, core: Path = CORE) -> list[str]:
    """``file:line: module`` for each import of a package above the core, at any depth of the
    file (module level, functions, ``TYPE_CHECKING`` blocks) and by ``importlib.import_module``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path, core)
            modules = [module, *(f"{module}.{alias.name}" for alias in node.names)]  # from algobench import slurm
        elif (
            isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            modules = [node.args[0].value]
        hit = next((m for m in modules if _above(m)), None)
        if hit is not None:
            found.append(f"{path.relative_to(core.parent)}:{node.lineno}: imports {hit}")
    return found


def test_the_core_files_are_found() -> None:
    names = {f.relative_to(CORE).as_posix() for f in core_files()}
    assert {"workload.py", "spec.py", "trial_spec.py", "layout.py"} <= names
    assert "cli.py" not in names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(CORE).as_posix())
def test_the_core_imports_nothing_above_it(path: Path) -> None:
    found = upward_imports(path)
    assert not found, "the core must not import the packages built on it:\n" + "\n".join(found)


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    fake_core = tmp_path / "algobench"
    (fake_core / "executors").mkdir(parents=True)
    source = (
        "import algobench.workloads\n"
        "from algobench.tuning.rulesets import get_ruleset\n"
        "from algobench import scoring\n"
        "def f():\n"
        "    from .. import slurm\n"
        "    import importlib\n"
        "    importlib.import_module('algobench.workloads.registry')\n"
        "from algobench import layout, spec\n"
        "from algobench.workload import Workload\n"
    )
    (fake_core / "executors" / "bad.py").write_text(source)
    found = upward_imports(fake_core / "executors" / "bad.py", core=fake_core)
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in found] == ["1", "2", "3", "5", "7"]
    assert found[0].startswith("algobench/executors/bad.py:1: imports algobench.workloads")
