"""Seeds derived from integers, stable across platforms and Python versions (torch-free)."""

from __future__ import annotations

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers: studies, trials, population members and rounds each get
    their own stream from one user seed."""
    return int(np.random.SeedSequence([int(p) % 2**63 for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)
