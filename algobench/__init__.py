"""algobench: time-to-result benchmark of training algorithms."""

__version__ = "0.1.0"
