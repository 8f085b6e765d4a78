"""Forking a trial on disk: a clone takes over its donor's state at the donor's current step.

Population tuners decide between segments, when every member has checkpointed at a round's
step. The fork is plain file work done by the driver (no torch, no submission code): the donor's
checkpoint and eval log are copied into the clone's trial directory, beside a ``fork.json`` that
names the new random-stream seed and the hyperparameter changes. The clone's next segment, in
whatever process runs it, resumes from the copied state and applies ``fork.json`` before its
first step (``apply_pending_fork``), then checkpoints and removes it, so a kill at any moment
leaves either the fork still to apply or the fork applied, never half of it.

Because the copy is taken at decision time, a donor that trains on (or is stopped) cannot take
the state its clones need away from them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from algobench.layout import CHECKPOINT_FILE, EVAL_FILE, SUMMARY_FILE
from algobench.results import read_json, write_json

FORK_FILE = "fork.json"
STAGED_CHECKPOINT = CHECKPOINT_FILE + ".fork"  # the donor's checkpoint, copied, not yet in place
# The clone's own files that a fork replaces: the donor's lineage takes their place.
REPLACED = (CHECKPOINT_FILE, CHECKPOINT_FILE + ".prev", EVAL_FILE, SUMMARY_FILE)


def fork_trial_dir(
    donor_dir: Path, clone_dir: Path, *, at_step: int, reseed: int | None, changes: dict[str, Any]
) -> None:
    """Make ``clone_dir`` a fork of ``donor_dir``'s checkpoint, which must be at ``at_step``
    (checked when the fork is applied: a donor that moved on is an error, never a silent restart)."""
    from algobench.errors import AlgobenchError

    source = donor_dir / CHECKPOINT_FILE
    if not source.exists():
        raise AlgobenchError(f"cannot fork from {donor_dir}: it has no checkpoint yet")
    fork = {"donor": str(donor_dir), "donor_step": at_step, "reseed": reseed, "changes": changes}
    if donor_dir.resolve() == clone_dir.resolve():  # a member changing its own hyperparameters
        write_json(clone_dir / FORK_FILE, fork)
        return
    clone_dir.mkdir(parents=True, exist_ok=True)
    for name in REPLACED:
        (clone_dir / name).unlink(missing_ok=True)
    shutil.copyfile(source, clone_dir / STAGED_CHECKPOINT)
    if (donor_dir / EVAL_FILE).exists():
        shutil.copyfile(donor_dir / EVAL_FILE, clone_dir / EVAL_FILE)
    write_json(clone_dir / FORK_FILE, fork)
    complete_fork_copy(clone_dir)


def complete_fork_copy(trial_dir: Path) -> None:
    """Put a staged donor checkpoint in place (also after a kill between copying and renaming)."""
    staged = trial_dir / STAGED_CHECKPOINT
    if staged.exists() and (trial_dir / FORK_FILE).exists():
        staged.replace(trial_dir / CHECKPOINT_FILE)


def pending_fork(trial_dir: Path) -> dict[str, Any] | None:
    """The fork to apply before the trial's next step (after ``complete_fork_copy``), or None."""
    return read_json(trial_dir / FORK_FILE)
