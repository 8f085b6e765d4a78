"""Search spaces, quasi-random sampling, tuning rulesets, the tuner interface and its driver, and
target setting (``target_setting``: the tuning procedure that sets the workloads' targets)."""
