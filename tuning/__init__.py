"""Search spaces, quasi-random sampling, tuning rulesets (and, later, tuners)."""
