"""How scoring reports bad input: a warning by default, an error with ``strict``, each naming the file.

A score is only as good as the logs behind it, so every problem found while reading them is
said out loud. By default scoring goes on (a truncated last line or a missing log should not
hide the other 9,999 trials); with ``strict`` the first problem stops it.
"""

from __future__ import annotations

import warnings
from os import PathLike

from algobench.errors import AlgobenchError


class ScoringError(AlgobenchError):
    """Input that cannot be scored (or, with ``strict``, any problem in it); names the file."""


class ScoringWarning(UserWarning):
    """A problem in the logs that scoring worked around; the message names the file."""


class Problems:
    """Collects the problems of one scoring run, warning about each or raising on the first.

    One instance per run, passed down explicitly, so that the messages can also be shown in the
    report and nothing is kept between runs.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.messages: list[str] = []

    def report(self, message: str, path: str | PathLike[str] | None = None) -> None:
        text = f"{path}: {message}" if path is not None else message
        if self.strict:
            raise ScoringError(text)
        self.messages.append(text)
        warnings.warn(text, ScoringWarning, stacklevel=3)
