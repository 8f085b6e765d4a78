"""PBT with ``--explore gp-opt``: the replaced members' new values come from GP-Opt's bandit (one
candidate, kept until its variance has shrunk by C), a population with a hopeless half is rescued,
the same seed gives the same event log, a killed run resumes to it, and bad settings are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from algobench.errors import AlgobenchError
from algobench.tuning.events import read_lines, read_schedule, values_at
from algobench.tuning.pbt import PBT
from algobench.tuning.pbt_gp_explore import GPExplorer
from algobench.tuning.search_space import Range, load_search_space
from algobench.tuning.tuners import TuningTask, make_settings
from tests.test_pbt import ADAMW, BASE, GOOD, HOPELESS, SPACE, member_dir, task, tune

# Learning rates that train on digits_mlp (tiny) with adamw: a fresh run at 1e-4 reaches 0.56-0.73
# validation accuracy in 100 steps, at 1e-5 below 0.1 (measured on seeds 1 and 2); 1e-2 is the
# search space's top. The bandit may end a member anywhere in here: once the weights it copies
# are good, the last intervals barely tell these rates apart.
TRAINS = (1e-4, 1e-2)
CONFIG = {"population": 4, "interval": 20, "max_steps": 100, "quantile": 0.5}


def start(root: Path) -> tuple[dict, Path]:
    space = root / "space.json"
    space.write_text(json.dumps(SPACE))
    points = [{**BASE, "learning_rate": lr} for lr in (GOOD[0], HOPELESS, GOOD[1], HOPELESS)]
    return {**CONFIG, "initial_points": points}, space


def events(experiment: Path) -> list[dict]:
    return read_lines(experiment / "tuning/digits_mlp/study_0/events.jsonl")


@pytest.fixture(scope="module")
def rescued(tmp_path_factory) -> Path:
    """Four members, two starting with a hopeless learning rate; the bottom half copies the top and
    takes the bandit's candidate."""
    root = tmp_path_factory.mktemp("gp_rescued")
    config, space = start(root)
    assert tune(root / "exp", "--explore", "gp-opt", config=config, space=space) == 0
    return root / "exp"


def test_the_hopeless_half_is_rescued_with_the_bandits_candidates(rescued):
    for member in range(1, 5):
        final = values_at(read_schedule(member_dir(rescued, member)), 10**9)["learning_rate"]
        assert TRAINS[0] <= final <= TRAINS[1], f"member {member} ends at learning rate {final}"
        summary = json.loads((member_dir(rescued, member) / "summary.json").read_text())
        assert summary["status"] in ("ok", "target_reached") and summary["steps"] == 100
        assert summary["best_validation_metric"] > 0.9
    log = events(rescued)
    first = [e for e in log if e["event"] == "exploit" and e["round"] == 1]
    assert sorted(e["member"] for e in first) == [2, 4]  # the hopeless ones copy at the first barrier
    assert all(e["donor"] in (1, 3) and e["old_hyperparameters"]["learning_rate"] == HOPELESS for e in first)
    assert all(e["new_hyperparameters"]["learning_rate"] >= 100 * HOPELESS for e in first)


def test_replacements_take_the_current_candidate_until_it_switches(rescued):
    log = events(rescued)
    switches = [e for e in log if e["event"] == "gp_switch"]
    exploits = [e for e in log if e["event"] == "exploit"]
    assert switches and len(switches) < len(exploits)  # some replacements reuse the candidate
    assert [s["switch"] for s in switches] == list(range(1, len(switches) + 1))
    current = None
    for record in log:
        if record["event"] == "gp_switch":
            current = record
        elif record["event"] == "exploit":
            # Every replacement takes the candidate's explored values; the rest are the donor's.
            assert record["arm"] == current["arm"]
            assert record["changes"] == current["hyperparameters"]
            assert set(record["changes"]) == {"learning_rate", "one_minus_beta1", "weight_decay"}
    observed = [e for e in log if e["event"] == "gp_observe"]
    assert [e["step"] for e in observed] == [20, 40, 60, 80]
    for record in observed:  # improvements centred on the barrier's mean
        values = [v for _, _, v in record["observations"]]
        assert len(values) == 4 and abs(sum(values)) < 1e-9


def test_a_rebuilt_tuner_holds_the_bandit_the_log_describes(rescued):
    space = load_search_space(rescued.parent / "space.json")
    rebuilt = TuningTask(str(ADAMW), "adamw_pbt", "digits_mlp", 0, 0, rescued, space, step_hint=5000)
    config, _ = start(rescued.parent)
    settings = make_settings(PBT.Settings, "pbt", [("t", {**config, "explorer": "gp-opt"})], rebuilt)
    tuner = PBT(rebuilt, settings)
    log = events(rescued)
    expected: dict[int, list[float]] = {}
    for record in log:
        for _, arm, value in record.get("observations", []):
            expected.setdefault(arm, []).append(value)
    assert tuner._gp.bandit.values == expected
    last = [e for e in log if e["event"] == "gp_switch"][-1]
    assert tuner._gp.candidate.arm == last["arm"] and tuner._gp.bandit.switches == last["switch"]
    assert tuner.finished


def test_the_same_seed_gives_the_same_log_and_a_killed_run_resumes_to_it(rescued, tmp_path):
    import algobench.executors.inprocess as inprocess

    config, space = start(tmp_path)
    original, calls = inprocess.InProcessExecutor.submit, []

    def submit(self, spec):
        calls.append(spec.trial)
        if len(calls) == 9:  # the first segment after round 2's decisions
            raise KeyboardInterrupt
        return original(self, spec)

    inprocess.InProcessExecutor.submit = submit
    try:
        assert tune(tmp_path / "exp", "--explore", "gp-opt", config=config, space=space) == 130
    finally:
        inprocess.InProcessExecutor.submit = original
    assert [e["round"] for e in events(tmp_path / "exp") if e["event"] == "round"] == [1, 2]
    assert tune(tmp_path / "exp", "--explore", "gp-opt", config=config, space=space) == 0
    assert events(tmp_path / "exp") == events(rescued)


def test_the_explorer_replays_its_own_lines(tmp_path):
    """observe/choose, then a fresh explorer fed the lines they returned: the same state."""
    lr = Range("learning_rate", 1e-5, 1e-1, "log")
    starts = {1: {"learning_rate": 1e-3}, 2: {"learning_rate": 1e-5}, 3: {"learning_rate": 1e-3}}

    def explorer() -> GPExplorer:
        return GPExplorer([lr], starts, acquisition="ucb", ratio=2.0, beta=2.0, arms=64, seed=3, sign=1.0,
                          timing_dir=tmp_path)  # fmt: skip

    live, lines = explorer(), []
    assert live.arm_of == {1: 0, 2: 1, 3: 0}  # equal starts share one arm
    rng = np.random.default_rng(0)
    fitness = {1: 0.5, 2: 0.1, 3: 0.6}
    for round_ in range(1, 5):
        lines.append(live.observe(round_, 20 * round_, fitness))
        changes, switch = live.choose(round_, 20 * round_, 2, fitness[3])
        lines += switch
        lines.append({"event": "exploit", "member": 2, "arm": live.arm_of[2], "donor_fitness": fitness[3]})
        fitness = {m: v + float(rng.normal(0.1, 0.02)) for m, v in fitness.items()}
        assert set(changes) == {"learning_rate"} and 1e-5 <= changes["learning_rate"] <= 1e-1
    replayed = explorer()
    for line in lines:
        replayed.replay(line)
    assert replayed.bandit.values == live.bandit.values and replayed.bandit.switches == live.bandit.switches
    state = ("arm", "repeats", "observed", "handed", "decided_at")
    assert [getattr(replayed.candidate, k) for k in state] == [getattr(live.candidate, k) for k in state]
    assert replayed.arm_of == live.arm_of and replayed.trained_from == live.trained_from


# --- settings -----------------------------------------------------------------------------------


def test_an_unknown_explore_value_is_a_one_line_error(tmp_path, capsys):
    assert tune(tmp_path / "exp", "--explore", "bayes", "--population", "2", "--interval", "20") != 0
    err = capsys.readouterr().err.strip()
    assert "explore (explorer) must be one of perturb, gp-opt, got 'bayes'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "exp" / "adamw_pbt").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"explorer": "gp-opt", "mode": "async"}, "explore gp-opt needs mode sync"),
        ({"explorer": "gp-opt", "acquisition": "pi"}, "acquisition must be one of ucb, ei, got 'pi'"),
        ({"explorer": "gp-opt", "ratio": 1}, "ratio must be above 1"),
        ({"ratio": 4}, "ratio: settings of --explore gp-opt, not of perturb"),
    ],
)
def test_bad_gp_explore_settings_are_one_line_errors(settings, message, tmp_path):
    with pytest.raises(AlgobenchError) as error:
        make_settings(PBT.Settings, "pbt", [("pbt.yaml", settings)], task(tmp_path))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_perturbing_run_records_the_settings_it_always_did(tmp_path):
    """The explorer's settings stay out of a default run's settings.json (older runs still resume)."""
    settings = make_settings(PBT.Settings, "pbt", [("t", {"population": 2, "interval": 20})], task(tmp_path))
    record = PBT(task(tmp_path), settings).settings_record()
    assert not {"explorer", "acquisition", "ratio", "beta", "arms"} & set(record)
    gp = make_settings(PBT.Settings, "pbt", [("t", {"population": 2, "interval": 20, "explorer": "gp-opt"})],
                       task(tmp_path))  # fmt: skip
    assert PBT(task(tmp_path), gp).settings_record()["explorer"] == "gp-opt"
