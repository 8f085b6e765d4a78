"""The baseline submissions (``algobench.baselines``), one folder each: ``submission.py`` and
``tuning_search_space.json``.

They are files, loaded by path as AlgoPerf loads submissions; this package only makes them
installed package data, so that code finds them with ``importlib.resources`` (target setting,
the tuned-baseline benchmark) rather than through the source tree.
"""
