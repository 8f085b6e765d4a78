"""Helpers and data for the scoring tests (``tests/test_scoring*.py``)."""
