"""Regenerate ``algoperf_published_trials.csv.gz`` from AlgoPerf's published leaderboard logs.

The fixture keeps, for every trial of AlgoPerf's v0.5 (external and self-tuning) and v0.6
(external) leaderboards, what scoring needs: the evaluation index and submission time at which
the trial first reached its validation target (or -1 / inf), and whether it had an evaluation
log at all. ``tests/test_scoring_algoperf.py`` rebuilds minimal logs from it and checks that
scoring reproduces the published scores. The logs are in github.com/mlcommons/submissions_algorithms
(``previous_leaderboards/algoperf_v05/logs``, ``previous_leaderboards/algoperf_v06/logs``)::

    python tests/scoring_fixtures/make_algoperf_fixture.py V05_LOGS_DIR V06_LOGS_DIR
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from algobench.scoring import get_protocol, load_trials, trial_times

SETS = (
    ("v05_external", 0, "external_tuning", "algoperf-v0.5"),
    ("v05_self", 0, "self_tuning", "algoperf-v0.5"),
    ("v06_external", 1, "external_tuning", "algoperf-v0.6"),
)
OUT = Path(__file__).with_name("algoperf_published_trials.csv.gz")


def main(v05: str, v06: str) -> None:
    roots = (Path(v05), Path(v06))
    frames = []
    for name, root, ruleset_dir, protocol_name in SETS:
        protocol = get_protocol(protocol_name, rules="code")
        # keep the trials without an evaluation log, so that either reading of the rules can be replayed
        protocol = replace(protocol, rules=replace(protocol.rules, missing_eval_log="not_reached"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial_set = load_trials([roots[root] / ruleset_dir], protocol)
        table = trial_times(trial_set.trials, trial_set.evals, protocol.rules)
        frames.append(
            pd.DataFrame(
                {
                    "set": name,
                    "submission": table["submission"],
                    "study": table["study"],
                    "workload": table["workload"],
                    "trial": table["trial"],
                    "ruleset": table["ruleset"],
                    "has_eval_log": table["has_eval_log"].astype(int),
                    "reached_eval_index": table["reached_eval_index"],
                    "time_to_target": table["time_to_target"].map(lambda t: "inf" if np.isinf(t) else repr(t)),
                }
            )
        )
    fixture = pd.concat(frames).sort_values(["set", "submission", "workload", "study", "trial"])
    fixture.to_csv(OUT, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"{len(fixture)} trials -> {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
