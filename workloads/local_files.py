"""Finding a real dataset's files in ``--data-dir``, with an error that names what is missing.

algobench never downloads: a user who has MNIST or CIFAR-10 on disk points ``--data-dir`` at
it, and a missing file is reported by name, with where it was looked for.
"""

from __future__ import annotations

from pathlib import Path

from algobench.errors import AlgobenchError


def find_file(data_dir: str | None, dataset: str, subdirs: tuple[str, ...], names: tuple[str, ...]) -> Path:
    """The first of ``names`` (e.g. a file and its ``.gz``) in ``data_dir`` or its ``subdirs``."""
    if not data_dir:
        raise AlgobenchError(
            f"the {dataset} workload reads {names[0]} from --data-dir, and none was given "
            "(algobench does not download datasets)"
        )
    folders = [Path(data_dir), *(Path(data_dir) / s for s in subdirs)]
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    looked = ", ".join(str(f) for f in folders)
    raise AlgobenchError(f"{dataset}: missing file {names[0]} (looked in {looked}); algobench does not download it")
