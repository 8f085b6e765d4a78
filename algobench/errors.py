"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations


class AlgobenchError(Exception):
    """A problem with the user's input or environment, worded for the user."""


class SubmissionError(AlgobenchError):
    """A submission file that cannot be loaded or does not follow the submission API."""


class SearchSpaceError(AlgobenchError):
    """A malformed ``tuning_search_space.json``."""


class UnknownWorkloadError(AlgobenchError):
    """A workload name that is not in the registry."""


class DivergedError(Exception):
    """The training loss became NaN or infinite: the trial ends as ``diverged``."""
