"""Calibration, target setting and the workload subcommands, kept to seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from algobench.errors import AlgobenchError
from algobench.executors.base import Executor, resolved
from algobench.tuning import target_setting
from algobench.workloads import calibration
from algobench.workloads.cli import main
from algobench.workloads.registry import SUITE, load_targets, workload_class, workload_info, workload_names


def test_uncalibrated_machine_has_factor_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGOBENCH_CACHE_DIR", str(tmp_path))
    assert calibration.calibration_factor("image_cnn_silu") == 1.0


def test_calibration_factor_is_measured_over_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGOBENCH_CACHE_DIR", str(tmp_path))
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"machine": {"host": "ref"}, "step_seconds": {"digits_mlp": 0.0005}}))
    monkeypatch.setattr(calibration, "REFERENCE_FILE", reference)
    monkeypatch.setattr(calibration, "reference_step_seconds", lambda name, device="cpu": 0.001)
    record = calibration.calibrate(["digits_mlp", "mnist1d"], threads=[1])
    assert record["by_threads"]["1"]["factors"] == {"digits_mlp": pytest.approx(2.0)}
    assert record["uncalibrated"] == ["mnist1d"]
    assert calibration.calibration_factor("digits_mlp", threads=1) == pytest.approx(2.0)
    assert calibration.calibration_factor("mnist1d", threads=1) == 1.0


def test_calibration_is_per_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A factor measured with one thread count is not used for another: the trial would run on a
    budget scaled for a different machine."""
    monkeypatch.setenv("ALGOBENCH_CACHE_DIR", str(tmp_path))
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"machine": {"host": "ref"}, "step_seconds": {"digits_mlp": 0.001}}))
    monkeypatch.setattr(calibration, "REFERENCE_FILE", reference)
    import torch

    monkeypatch.setattr(
        calibration, "reference_step_seconds", lambda name, device="cpu": 0.001 * (3 - torch.get_num_threads())
    )
    calibration.calibrate(["digits_mlp"], threads=[1])
    calibration.calibrate(["digits_mlp"], threads=[2])  # kept beside the first, not over it
    assert calibration.calibration_factor("digits_mlp", threads=1) == pytest.approx(2.0)
    assert calibration.calibration_factor("digits_mlp", threads=2) == pytest.approx(1.0)
    with pytest.raises(AlgobenchError, match=r"holds factors for 1, 2 torch thread\(s\) per trial, not 4: run"):
        calibration.calibration_factor("digits_mlp", threads=4)
    with pytest.raises(AlgobenchError, match="must be at least 1"):
        calibration.calibrate(["digits_mlp"], threads=[0])


def test_reference_step_is_timed() -> None:
    seconds = calibration.reference_step_seconds("digits_mlp", steps=3)
    assert 0 < seconds < 1


def test_a_workload_steps_as_fast_as_itself() -> None:
    assert 0.5 < calibration.step_time_ratio("digits_mlp", "digits_mlp", steps=20) < 2


def _fake_run(
    tmp_path: Path, name: str, rows: list[tuple[float, float, float]], metric: str = "accuracy"
) -> target_setting.Run:
    """A finished trial directory whose eval log has (score, validation, test) rows."""
    trial_dir = tmp_path / name
    trial_dir.mkdir()
    lines = [f"score,validation/{metric},test/{metric}", *(f"{s},{v},{t}" for s, v, t in rows)]
    (trial_dir / "eval_measurements.csv").write_text("\n".join(lines) + "\n")
    best = (min if metric == "loss" else max)(v for _, v, _ in rows)
    return target_setting.Run("nadamw", 0, 0, {}, best, trial_dir)


def test_targets_are_the_median_best_and_the_test_value_where_it_was_reached(tmp_path: Path) -> None:
    runs = [
        _fake_run(tmp_path, "a", [(10, 0.80, 0.79), (20, 0.90, 0.88), (30, 0.91, 0.90)]),
        _fake_run(tmp_path, "b", [(10, 0.85, 0.84), (20, 0.88, 0.86)]),
        _fake_run(tmp_path, "c", [(10, 0.89, 0.87), (20, 0.93, 0.92)]),
    ]
    result = target_setting.targets_from_runs(runs, "accuracy", "max")
    assert result["validation_target_value"] == pytest.approx(0.91)  # median of 0.91, 0.88, 0.93
    # The worse of runs a and c, which reached it; 0.90 as a float32 metric is 0.89999998, hence 0.899999.
    assert result["test_target_value"] == 0.899999
    assert result["time_to_target_sec"] == [30, 20]


def test_a_float32_metric_reaches_the_target_it_set(tmp_path: Path) -> None:
    accuracy = float(np.float32(0.9))  # 450 of 500, as the evaluation computes it: 0.8999999761…
    runs = [_fake_run(tmp_path, name, [(10, accuracy, accuracy)]) for name in "abc"]
    result = target_setting.targets_from_runs(runs, "accuracy", "max")
    assert result["validation_target_value"] == 0.899999 and accuracy >= result["validation_target_value"]
    assert target_setting.round_easier(accuracy, "max") == 0.899999  # the one rounding rule
    loss = float(np.float32(2.5773287))
    runs = [_fake_run(tmp_path, f"loss_{name}", [(10, loss, loss)], "loss") for name in "abc"]
    assert loss <= target_setting.targets_from_runs(runs, "loss", "min")["validation_target_value"] == 2.577329


def test_a_minimised_metric_takes_the_highest_test_value_of_the_runs_that_reached(tmp_path: Path) -> None:
    runs = [
        _fake_run(tmp_path, "a", [(10, 2.9, 2.95), (20, 2.6, 2.66)], "loss"),
        _fake_run(tmp_path, "b", [(10, 2.7, 2.71), (20, 2.5, 2.52)], "loss"),
        _fake_run(tmp_path, "c", [(10, 2.8, 2.83), (20, 2.7, 2.70)], "loss"),
    ]
    result = target_setting.targets_from_runs(runs, "loss", "min")
    assert result["validation_target_value"] == pytest.approx(2.6)
    assert result["test_target_value"] == pytest.approx(2.66)  # a (2.66) and b (2.52) reached it; c did not


def test_variant_needs_its_base_targets_first(tmp_path: Path) -> None:
    (tmp_path / "image_cnn.json").write_text(json.dumps({"provenance": {"method": "provisional"}}))
    with pytest.raises(AlgobenchError, match="algobench targets image_cnn"):
        target_setting.set_variant_targets("image_cnn_silu", 3, tmp_path, "cpu", tmp_path, RecordingExecutor())


def test_a_variant_reads_its_base_from_the_installed_targets_when_none_was_written(tmp_path: Path) -> None:
    with pytest.raises(AlgobenchError, match="`algobench targets mnist` first"):
        target_setting.set_variant_targets("mnist", 3, tmp_path, "cpu", tmp_path, RecordingExecutor())
    document = target_setting._base_document("image_cnn", tmp_path)
    assert document["provenance"]["method"] == "target_setting"  # the installed file (tuned)
    assert document["max_allowed_runtime_sec"] == load_targets("image_cnn").max_allowed_runtime_sec


def test_provisional_targets_are_rounded_easier_like_tuned_ones() -> None:
    """A hand-written target goes through the same rounding as a tuned one, and a float32
    metric equal to the value written (or to the median seed's, for a tuned one) reaches it:
    296/300 = 0.98666668 in float32 on digits_mlp, whose seeds' median it is."""
    import torch

    provisional = [n for n in workload_names() if load_targets(n).provenance.get("method") == "provisional"]
    assert set(provisional) == {"mnist", "cifar10"}  # no data files on this machine to tune them on
    for name in provisional:
        targets = load_targets(name)
        written = targets.provenance["rounded_from"]
        direction = workload_info(name).metric_direction
        for key in ("validation_target_value", "test_target_value"):
            assert getattr(targets, key) == target_setting.round_easier(written[key], direction), (name, key)
            assert direction.reached(float(np.float32(written[key])), getattr(targets, key)), (name, key)
    correct = torch.cat([torch.ones(296), torch.zeros(4)]).mean().item()
    digits = load_targets("digits_mlp")
    median = float(np.median(digits.provenance["seeds_best"]))
    assert digits.validation_target_value == target_setting.round_easier(median, "max") < median
    assert correct == median and correct >= digits.validation_target_value


def test_a_dearer_variant_gets_a_larger_budget_and_its_base_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    step_seconds = {"mri": 0.020, "mri_channels": 0.050, "mri_tanh": 0.021, "mri_layernorm": 0.015}
    monkeypatch.setattr(calibration, "step_time_ratio", lambda name, other: step_seconds[name] / step_seconds[other])
    assert target_setting.variant_budget("mri_channels", 30.0) == (75.0, pytest.approx(2.5))
    assert target_setting.variant_budget("mri_tanh", 30.0) == (30.0, pytest.approx(1.05))  # within timing noise
    assert target_setting.variant_budget("mri_layernorm", 30.0)[0] == 30.0  # a cheaper step keeps the base's
    for variant in ("mri_channels", "mri_tanh"):
        assert target_setting.step_budget(variant) == target_setting.step_budget("mri")


def test_target_setting_end_to_end_on_a_tiny_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target_setting, "RUN_FRACTION", 0.002)  # about 30 steps of digits_mlp
    monkeypatch.setattr(target_setting, "OPTIMIZERS", ("nadamw", "sgd_momentum"))
    document = target_setting.set_targets(
        "digits_mlp", trials=1, seeds=1, target_seeds=2, root=tmp_path / "runs", out_dir=tmp_path, command="test"
    )
    written = json.loads((tmp_path / "digits_mlp.json").read_text())
    assert written == json.loads(json.dumps(document))
    assert 0 < written["validation_target_value"] <= 1
    assert written["provenance"]["winner"] in ("nadamw", "sgd_momentum")
    assert written["provenance"]["method"] == "target_setting"
    winner = written["provenance"]["winner"]
    assert len(written["provenance"]["optimizers"][winner]["seeds"]) == 1  # picked the winner
    assert len(written["provenance"]["seeds_best"]) == 2  # set the target: that seed and one more
    assert written["max_allowed_runtime_sec"] == 20
    # Resuming reruns nothing: the same trial directories give the same targets.
    again = target_setting.set_targets(
        "digits_mlp", trials=1, seeds=1, target_seeds=2, root=tmp_path / "runs", out_dir=tmp_path, command="test"
    )
    assert again["validation_target_value"] == written["validation_target_value"]
    # The trials' summaries hold the honest calibration factor; target setting's share is apart.
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("summary.json")]
    assert summaries and all(s["calibration_factor"] == calibration.calibration_factor("digits_mlp") for s in summaries)

    # More seeds of the recorded winner, without searching again, then a check on fresh seeds.
    searched = sorted((tmp_path / "runs").rglob("study_0/*/trial_*/summary.json"))
    reseeded = target_setting.set_targets(
        "digits_mlp", seeds=1, target_seeds=3, root=tmp_path / "runs", out_dir=tmp_path, command="test",
        reseed_winner=True, check_seeds=2,
    )  # fmt: skip
    assert sorted((tmp_path / "runs").rglob("study_0/*/trial_*/summary.json")) == searched  # no new search
    provenance = reseeded["provenance"]
    assert provenance["winner"] == winner and provenance["optimizers"] == written["provenance"]["optimizers"]
    assert provenance["search_date"] == written["provenance"]["date"] and "(search of" in provenance["procedure"]
    assert provenance["seeds_best"][:2] == written["provenance"]["seeds_best"]  # the first two reused
    assert len(provenance["seeds_best"]) == 3
    check = provenance["fresh_seed_check"]
    target = reseeded["validation_target_value"]
    assert check["seeds"] == 2 and len(check["values"]) == 2
    assert check["reached"] == sum(v is not None and v >= target for v in check["values"])  # accuracy: higher


def test_reseeding_needs_a_winner_that_the_procedure_recorded(tmp_path: Path) -> None:
    with pytest.raises(AlgobenchError, match=r"mnist: its targets were not set by the procedure"):
        target_setting.reseed_base_targets("mnist", 3, tmp_path / "runs", "cpu", tmp_path, executor=None)


class RecordingExecutor(Executor):
    """Target setting drives its trials through an executor; this one records the specs."""

    def __init__(self) -> None:
        self.seen: list = []

    def submit(self, spec):  # noqa: ANN001, ANN201
        assert Path(spec.submission_path).is_file()
        self.seen.append(spec)
        return resolved({"status": "ok", "best_validation_metric": 0.5, "steps": 1})


def test_target_setting_trials_carry_the_calibration_factor_and_their_own_budget_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from algobench.workloads import get_workload

    executor = RecordingExecutor()
    monkeypatch.setattr(calibration, "calibration_factor", lambda name, threads=1: 2.0)
    monkeypatch.setattr(target_setting, "calibration_factor", lambda name, threads=1: 2.0)
    (run,) = target_setting._runs(
        "adamw", "digits_mlp", [(0, 3, 3, {"learning_rate": 1e-3})], tmp_path, "cpu", executor
    )
    seen = executor.seen
    (spec,) = seen
    assert spec.calibration_factor == 2.0  # the machine's factor, only
    assert spec.budget_scale == pytest.approx(target_setting.RUN_FRACTION * target_setting.WALL_SAFETY)
    assert spec.make_workload is get_workload and spec.budget_multiplier == 1.0 and spec.ruleset == "external"
    assert spec.max_steps == target_setting.step_budget("digits_mlp")[0] and not spec.stop_on_target
    assert run.best_validation == 0.5 and run.trial_dir == spec.trial_dir()


def test_baselines_are_found_as_installed_package_data() -> None:
    from importlib import resources

    for optimizer in target_setting.OPTIMIZERS:
        for name in ("submission.py", "tuning_search_space.json"):
            with target_setting.baseline_file(optimizer, name) as path:
                assert path.is_file()
    assert resources.files("algobench.baselines").joinpath("adamw", "submission.py").is_file()
    with pytest.raises(AlgobenchError, match="no submission.py"), target_setting.baseline_file("lion", "submission.py"):
        pass


def test_targets_are_written_where_the_user_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []

    def fake_set_targets(name, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls.append((name, kwargs))
        return {"validation_target_value": 0.9, "test_target_value": 0.9, "provenance": {"winner": "adamw"}}

    monkeypatch.setattr(target_setting, "set_targets", fake_set_targets)
    monkeypatch.chdir(tmp_path)
    assert main(["targets", "digits_mlp"]) == 0
    assert main(["targets", "mnist1d", "--out", str(tmp_path / "mine"), "--dir", str(tmp_path / "trials")]) == 0
    (first, kwargs), (second, kwargs2) = calls
    assert kwargs["out_dir"] == Path("targets") and kwargs["root"] is None  # ./targets, the cache's trials
    assert kwargs2["out_dir"] == tmp_path / "mine" and kwargs2["root"] == tmp_path / "trials"
    assert "digits_mlp.json" in capsys.readouterr().out


def test_targets_help_says_where_the_files_go(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["targets", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--out" in out and "workloads/targets/" in out and "./targets" in out


def test_workloads_subcommand_lists_every_workload(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workloads"]) == 0
    out = capsys.readouterr().out
    for name in ("image_cnn", "image_cnn_silu", "translation_glu_tanh", "speech", "mnist", "cifar10"):
        assert name in out
    assert "provisional" in out
    assert "sizes" not in out
    # Each target says how many seeds of the winner set it and how many fresh seeds reached it.
    provenance = load_targets("image_cnn").provenance
    fresh = provenance["fresh_seed_check"]
    assert _listed(out, "image_cnn").endswith(
        f"({provenance['winner']}, {len(provenance['seeds_best'])} seeds, "
        f"{fresh['reached']} of {fresh['seeds']} fresh seeds reach it)"
    )
    assert _listed(out, "image_cnn_silu").endswith(f"({provenance['winner']}, 5 seeds)")  # no fresh-seed check


def _listed(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.split() and line.split()[0] == name)


def test_workloads_subcommand_shows_sizes_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workloads", "--base-only", "--scale", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "tiny sizes" in out and "widths=8x8x8" in out and "image_cnn_silu" not in out


def test_listing_the_workloads_imports_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, io, contextlib\n"
        "from algobench.workloads.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['workloads']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'numpy', 'algobench.workloads.base') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_suite_selects_the_eight_algoperf_mirrors_once() -> None:
    from algobench.workloads.registry import SUITE, expand_workload_names, workload_class

    names = expand_workload_names(["mnist1d", "suite", "lm"])
    assert names == ["mnist1d", *SUITE]
    assert len(SUITE) == 8 and all(workload_class(n).variant is None for n in SUITE)


def test_an_unknown_name_in_a_selection_is_named() -> None:
    from algobench.errors import UnknownWorkloadError
    from algobench.workloads.registry import expand_workload_names

    with pytest.raises(UnknownWorkloadError, match="'image_cnnn'.*Did you mean image_cnn"):
        expand_workload_names(["suite", "image_cnnn"])


def test_step_hint_of_every_suite_workload_is_the_reference_steps_in_its_budget() -> None:
    """AlgoPerf's definition: the steps the baseline makes within the budget, so that a schedule
    over ``step_hint`` spans the budget. (It was the target-setting run length, 2/3 of that: a
    self-tuning run of an AlgoPerf schedule then trained its last half at a learning rate of 0.)
    Target-setting runs keep schedules over their own length, which their trials are given."""
    from algobench.workloads.registry import SUITE, workload_class, workload_names

    for name in workload_names():
        cls = workload_class(name)
        if cls.base_name in SUITE:
            run_length = target_setting.step_budget(name)[0]
            assert cls.step_hint == target_setting.budget_steps(name), name
            assert abs(cls.step_hint - 1.5 * run_length) <= 1, name
            spec = target_setting._spec("nadamw", name, 0, 1, 0, {}, Path("/nonexistent"), "cpu", Path("s.py"))
            assert spec.step_hint == spec.max_steps == run_length, name


def test_a_trial_specs_step_hint_is_that_trials_alone() -> None:
    from algobench.trial import make_workload
    from algobench.trial_spec import TrialSpec
    from algobench.workloads import get_workload

    spec = TrialSpec("s.py", "s", "image_cnn", 0, 1, None, 0, "/nonexistent", make_workload=get_workload,
                     scale="tiny", step_hint=7)  # fmt: skip
    assert make_workload(spec).step_hint == 7
    assert get_workload("image_cnn", scale="tiny").step_hint == 1506  # the class keeps its own


def test_calibrate_by_default_times_every_base_workload_that_needs_no_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALGOBENCH_CACHE_DIR", str(tmp_path))
    timed: list[str] = []
    monkeypatch.setattr(calibration, "reference_step_seconds", lambda name, device="cpu": timed.append(name) or 0.01)
    assert main(["calibrate"]) == 0
    assert "mnist" not in timed and "cifar10" not in timed  # they read a real dataset from --data-dir
    assert {"image_cnn", "click_through", "speech", "digits_mlp"} <= set(timed)
    assert all(workload_class(n).variant is None for n in timed)  # a variant uses its base's factor
    written = json.loads((tmp_path / "calibration.json").read_text())
    assert "1" in written["by_threads"]  # the default thread count of a trial is always calibrated
    for measured in written["by_threads"].values():
        assert measured["factors"]["image_cnn"] == pytest.approx(
            0.01 / calibration.reference_steps()["step_seconds"]["image_cnn"]
        )
    with pytest.raises(AlgobenchError, match="--threads must be comma-separated whole numbers, got 'one'"):
        main(["calibrate", "--threads", "one"])


def test_calibrate_suite_times_the_eight_bases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGOBENCH_CACHE_DIR", str(tmp_path))
    timed: list[str] = []
    monkeypatch.setattr(calibration, "reference_step_seconds", lambda name, device="cpu": timed.append(name) or 0.01)
    assert main(["calibrate", "--workloads", "suite", "--threads", "1"]) == 0
    assert sorted(timed) == sorted(SUITE)


@pytest.mark.parametrize("flag", ["--trials", "--seeds", "--target-seeds"])
def test_targets_refuses_a_count_below_one(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["targets", "image_cnn", flag, "0"])
    assert exited.value.code == 2
    assert f"{flag}: must be at least 1, got 0" in capsys.readouterr().err
