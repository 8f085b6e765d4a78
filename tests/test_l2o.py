"""Learned optimizers and schedules (algobench.l2o): meta-training, its estimator, resume, the
shipped rules on the tiny workloads, and the error paths. Real training throughout (toy task
family, tiny workloads); nothing is mocked."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from algobench.errors import AlgobenchError, DivergedError
from algobench.hyperparameters import Hyperparameters
from algobench.l2o.meta_train import CHECKPOINT, WEIGHTS, MetaTrainConfig, MetaTrainer
from algobench.l2o.optim import LearnedOptimizer, PerTensorOptimizer
from algobench.l2o.pes import draw_perturbations, pes_gradient
from algobench.l2o.rules import RULES, LSTMRule, MLPRule
from algobench.l2o.weights import load_rule, save_rule
from algobench.runner import RunConfig, TrialRunner
from algobench.submission import load_submission
from algobench.workloads import get_workload

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"


def toy(optimizer: str, **changes) -> MetaTrainConfig:
    settings = dict(
        optimizer=optimizer, outer_steps=20, particles=4, unroll=5, family="toy", meta_lr=1e-2,
        eval_every=10, eval_tasks=3, checkpoint_every=2,
    )  # fmt: skip
    return MetaTrainConfig(**{**settings, **changes})


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("optimizer", ["mlp", "schedule"])
def test_meta_training_on_the_toy_family_lowers_the_meta_loss(optimizer: str, tmp_path: Path) -> None:
    state = MetaTrainer(toy(optimizer), tmp_path, show_progress=False).run()
    evals = state.history["eval_loss"]
    assert len(evals) == 3  # outer steps 0, 10 and the end
    assert evals[-1] < evals[0] - 0.02, evals
    assert state.compute["outer_steps"] == 20 and state.compute["tasks_seen"] > 4
    assert state.compute["cpu_seconds"] > 0
    for name in (WEIGHTS, "meta_training.json", "meta_loss.png", CHECKPOINT):
        assert (tmp_path / name).stat().st_size > 0
    trained = load_rule(tmp_path / WEIGHTS, optimizer)
    assert not torch.equal(trained.flat(), RULES[optimizer]().flat())


def test_meta_training_the_lstm_by_truncated_backprop_lowers_the_meta_loss(tmp_path: Path) -> None:
    state = MetaTrainer(toy("lstm", outer_steps=20), tmp_path, show_progress=False).run()
    evals = state.history["eval_loss"]
    assert min(evals[1:]) < evals[0] - 0.05, evals


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["mlp", "lstm"])
def test_a_killed_meta_training_resumes_bit_identically(optimizer: str, tmp_path: Path) -> None:
    config = toy(optimizer, outer_steps=9, eval_every=4, checkpoint_every=3)
    straight = MetaTrainer(config, tmp_path / "straight", show_progress=False).run()

    def die_at_step_8(step: int, _loss: float) -> None:
        if step == 8:  # the last checkpoint is step 6: steps 7 and 8 are lost and redone
            raise Interrupt

    with pytest.raises(Interrupt):
        MetaTrainer(config, tmp_path / "killed", show_progress=False).run(on_step=die_at_step_8)
    resumed = MetaTrainer(config, tmp_path / "killed", show_progress=False).run()

    assert resumed.history == straight.history
    for name, tensor in straight.rule_state.items():
        assert torch.equal(resumed.rule_state[name], tensor), name
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=False)["state"]
    b = torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=False)["state"]
    assert [p["spec"] for p in a["particles"]] == [p["spec"] for p in b["particles"]]
    for pa, pb in zip(a["particles"], b["particles"], strict=True):
        for qa, qb in zip(pa["params"][0], pb["params"][0], strict=True):
            assert torch.equal(qa, qb)
    assert resumed.compute["outer_steps"] == 9


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    MetaTrainer(toy("schedule", outer_steps=2), tmp_path, show_progress=False).run()
    with pytest.raises(AlgobenchError, match=r"checkpoint.pt: made with other settings \(sigma"):
        MetaTrainer(toy("schedule", outer_steps=2, sigma=0.05), tmp_path, show_progress=False).run()


def _episode_losses(theta: torch.Tensor, x0: torch.Tensor, a: float, target: torch.Tensor, steps: int):
    """A linear inner problem x_{t+1} = a x_t + theta, loss_t = |x_t - target|^2 (batched over rows)."""
    x, losses = x0, []
    for _ in range(steps):
        x = a * x + theta
        losses.append(((x - target) ** 2).sum(dim=-1))
    return x, torch.stack(losses).sum(dim=0)


def test_pes_is_unbiased_on_a_quadratic_where_truncated_es_is_not() -> None:
    dim, a, unroll, truncations, pairs, sigma = 3, 0.8, 4, 3, 40_000, 0.05
    theta = torch.tensor([0.3, -0.2, 0.1])
    target = torch.tensor([1.0, 0.5, -1.0])
    x0 = torch.zeros(dim)
    exact_theta = theta.clone().requires_grad_(True)
    _, total = _episode_losses(exact_theta, x0, a, target, unroll * truncations)
    (exact,) = torch.autograd.grad(total, exact_theta)

    generator = torch.Generator().manual_seed(0)
    x_pos = x_neg = x0.expand(pairs, dim)
    xi = torch.zeros(pairs, dim)
    pes = torch.zeros(dim)
    truncated_es = torch.zeros(dim)
    for _ in range(truncations):
        eps = draw_perturbations(pairs, dim, sigma, generator)
        xi = xi + eps
        x_pos, loss_pos = _episode_losses(theta + eps, x_pos, a, target, unroll)
        x_neg, loss_neg = _episode_losses(theta - eps, x_neg, a, target, unroll)
        pes += pes_gradient(loss_pos, loss_neg, xi, sigma)
        truncated_es += pes_gradient(loss_pos, loss_neg, eps, sigma)  # forgets earlier perturbations
    assert torch.allclose(pes, exact, rtol=0.05, atol=0.05 * exact.abs().max()), (pes, exact)
    assert (truncated_es - exact).abs().max() > 0.2 * exact.abs().max(), (truncated_es, exact)


def _train_tiny(submission: Path, workload_name: str, steps: int) -> TrialRunner:
    workload = get_workload(workload_name, scale="tiny")
    config = RunConfig(budget_sec=1e9, eval_period_sec=1e9, seed=0, max_steps=steps, stop_on_target=False)
    runner = TrialRunner(workload, load_submission(submission), Hyperparameters({}), config)
    runner.run()
    return runner


@pytest.mark.parametrize("rule", ["l2o_mlp", "l2o_schedule", "l2o_lstm"])
@pytest.mark.parametrize("workload_name", ["digits_mlp", "mnist1d"])
def test_each_shipped_rule_loads_and_trains_the_tiny_workloads(rule: str, workload_name: str) -> None:
    runner = _train_tiny(SUBMISSIONS / rule / "submission.py", workload_name, steps=150)
    assert runner.state.status in (None, "ok", "out_of_time", "target_reached"), runner.state.error
    final = runner.state.eval_history[-1]
    assert final["global_step"] == 150
    chance = math.log(10)  # both workloads have ten classes; an untrained model sits near chance
    assert final["train/loss"] < 0.8 * chance, final


def test_the_learned_schedule_prints_its_decisions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _train_tiny(SUBMISSIONS / "l2o_schedule" / "submission.py", "digits_mlp", steps=30)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("l2o_schedule step=")]
    assert lines and lines[0].startswith("l2o_schedule step=0 progress=0.0000 lr=")


def test_features_are_scale_free_so_a_huge_gradient_gives_the_same_bounded_update() -> None:
    torch.manual_seed(0)
    rule = load_rule(SUBMISSIONS / "l2o_mlp" / "weights.pt", "mlp")
    params = [torch.randn(20, 5), torch.randn(5)]
    grads = [torch.randn(20, 5), torch.randn(5)]
    states = [rule.init_state(p) for p in params]
    with torch.no_grad():
        small, _ = rule.step(params, grads, states, 3, 100)
        huge, _ = rule.step(params, [g * 1e12 for g in grads], states, 3, 100)
    for p, s, h in zip(params, small, huge, strict=True):
        assert torch.allclose(s - p, h - p, rtol=1e-3, atol=1e-7)
        assert (h - p).abs().max() < 1.0


def test_a_non_finite_update_is_caught_as_divergence() -> None:
    model = torch.nn.Linear(4, 2)
    optimizer = LearnedOptimizer(model.parameters(), MLPRule(), step_hint=100)
    model(torch.randn(3, 4)).sum().backward()
    with torch.no_grad():
        model.weight[0, 0] = math.inf
    with pytest.raises(DivergedError, match="non-finite update at step 0"):
        optimizer.step()


@pytest.mark.parametrize("rule_class", [LSTMRule, MLPRule])
def test_a_learned_optimizer_checkpoints_its_state_like_adam(rule_class: type) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    rule = rule_class()
    optimizer = LearnedOptimizer(model.parameters(), rule, step_hint=50)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(8, 4)).square().mean().backward()
        optimizer.step()
    copy = torch.nn.Linear(4, 2)
    copy.load_state_dict(model.state_dict())
    restored = LearnedOptimizer(copy.parameters(), rule, step_hint=50)
    restored.load_state_dict(optimizer.state_dict())
    batch = torch.randn(8, 4)
    for m, o in ((model, optimizer), (copy, restored)):
        o.zero_grad()
        m(batch).square().mean().backward()
        o.step()
    assert torch.equal(model.weight, copy.weight) and int(restored.state[copy.weight]["step"]) == 4


def test_weights_that_do_not_fit_are_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    small = save_rule(MLPRule(hidden=4), tmp_path / "small.pt")
    document = torch.load(small, weights_only=True)
    document["config"]["hidden"] = 8  # declares one architecture, holds another's tensors
    torch.save(document, tmp_path / "mismatch.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    cases = {
        "mismatch.pt": "weights do not match the mlp rule's architecture: ",
        "garbage.pt": "not a readable weights file",
        "missing.pt": "learned-rule weights not found",
    }
    for name, message in cases.items():
        with pytest.raises(AlgobenchError) as caught:
            load_rule(tmp_path / name, "mlp")
        text = str(caught.value)
        assert text.startswith(f"{tmp_path / name}: {message}") and "\n" not in text, text
    with pytest.raises(AlgobenchError, match=r"small.pt: holds weights of a 'mlp' rule, not 'lstm'"):
        load_rule(small, "lstm")


def test_the_meta_train_command_writes_weights_record_and_curve(tmp_path: Path, capsys) -> None:
    import json

    from algobench.cli import main

    args = ["meta-train", "--optimizer", "schedule", "--out", str(tmp_path), "--family", "toy", "--outer-steps", "3",
            "--particles", "2", "--unroll", "3", "--eval-every", "2", "--quiet"]  # fmt: skip
    assert main(args) == 0
    record = json.loads((tmp_path / "meta_training.json").read_text())
    assert record["compute"]["outer_steps"] == 3 and record["estimator"] == "antithetic PES"
    assert record["settings"]["family"] == "toy" and record["history"]["eval_step"] == [0, 2, 3]
    assert "meta-train schedule: 3 outer steps" in capsys.readouterr().out
    load_rule(tmp_path / WEIGHTS, "schedule")
    assert main([*args, "--sigma", "0.5"]) == 2  # other settings on the same --out
    assert "made with other settings (sigma: 0.01 there, 0.5 here)" in capsys.readouterr().err


class SparseModel(torch.nn.Module):
    """Tensors of several shapes, an embedding whose unused rows get zero gradients, and an
    auxiliary head used every third step only (its gradient is None otherwise)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 8)
        self.body = torch.nn.Sequential(torch.nn.Linear(24, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
        self.aux = torch.nn.Linear(24, 3)

    def forward(self, tokens: torch.Tensor, use_aux: bool) -> torch.Tensor:
        features = self.embed(tokens).flatten(1)
        return self.body(features) + (self.aux(features) if use_aux else 0.0)


@pytest.mark.parametrize(
    ("kind", "lr_scale", "chunk"), [("mlp", 1.0, None), ("mlp", 0.3, None), ("mlp", 1.0, 100), ("lstm", 1.0, 100)]
)
def test_the_fused_step_gives_the_per_tensor_rule_s_updates(kind: str, lr_scale: float, chunk: int | None) -> None:
    rule = load_rule(SUBMISSIONS / f"l2o_{kind}" / "weights.pt", kind)
    if chunk is not None:  # ~900 coordinates: chunks that cut across tensors
        rule.CHUNK = chunk
    torch.manual_seed(0)
    fused_model, reference_model = SparseModel(), SparseModel()
    reference_model.load_state_dict(fused_model.state_dict())
    fused = LearnedOptimizer(fused_model.parameters(), rule, step_hint=40, lr_scale=lr_scale)
    reference = PerTensorOptimizer(reference_model.parameters(), rule, step_hint=40, lr_scale=lr_scale)
    start = [p.detach().clone() for p in fused_model.parameters()]
    generator = torch.Generator().manual_seed(1)
    for step in range(12):  # progress 0 to 0.3 of the step hint; the aux head joins and leaves
        tokens, labels = (
            torch.randint(0, 50, (16, 3), generator=generator),
            torch.randint(0, 3, (16,), generator=generator),
        )
        for model, optimizer in ((fused_model, fused), (reference_model, reference)):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(tokens, use_aux=step % 3 == 0), labels).backward()
            optimizer.step()
        for name, p in fused_model.named_parameters():  # float32 rounding: a few ulp of |p| (up to ~4)
            q = reference_model.get_parameter(name).detach()
            gap = float((p.detach() - q).abs().max())
            assert gap <= 1e-6 * max(1.0, float(q.abs().max())), (step, name, gap)
    moved = max(float((p.detach() - s).abs().max()) for p, s in zip(fused_model.parameters(), start, strict=True))
    assert moved > 1e-2, moved  # the rules did update: the comparison is not of two standing models
    for (name, p), q in zip(fused_model.named_parameters(), reference_model.parameters(), strict=True):
        assert int(fused.state[p]["step"]) == reference.state[q]["step"], name
        for key, value in reference.state[q].items():  # the LSTM's cells (|h| ~ 1) carry float32
            if key != "step":  # rounding through 12 recurrences: 5e-6 seen
                gap = float((fused.state[p][key] - value).abs().max())
                assert gap < 2e-5 * max(1.0, float(value.abs().max())), (name, key, gap)


def test_the_shipped_mlp_submission_s_trajectory_is_unchanged_on_a_tiny_workload() -> None:
    workload = get_workload("digits_mlp", scale="tiny")
    submission = load_submission(SUBMISSIONS / "l2o_mlp" / "submission.py")
    hp = Hyperparameters({})
    queue = workload._build_input_queue(0, "train", None, submission.batch_size(workload, hp))
    batches = [next(queue) for _ in range(6)]
    runs = {}
    for name in ("fused", "reference"):
        torch.manual_seed(0)
        model, model_state = workload.init_model_fn(0)
        opt_state = submission.init_optimizer_state(workload, model, model_state, hp, None)
        if name == "reference":
            rule = opt_state["optimizer"].rule
            opt_state["optimizer"] = PerTensorOptimizer(model.parameters(), rule, workload.step_hint)
        start = [p.detach().clone() for p in model.parameters()]
        for step, batch in enumerate(batches):
            opt_state, model, model_state = submission.update_params(
                workload, model, workload.model_params_types, model_state, hp, batch, workload.loss_type,
                opt_state, [], step, None,
            )  # fmt: skip
        runs[name] = (start, [p.detach().clone() for p in model.parameters()])
    (start, fused), (_, reference) = runs["fused"], runs["reference"]
    assert max(float((f - s).abs().max()) for f, s in zip(fused, start, strict=True)) > 1e-2  # steps of ~5e-2
    # One step agrees to ~6e-8; over six, the few coordinates whose gradient sits near zero (a ReLU
    # at its kink: the normalised features are nearly its sign, as in Adam) amplify that rounding
    # to ~2e-6 (15 of 25k coordinates above 1e-7 when measured).
    gaps = torch.cat([(f - r).abs().reshape(-1) for f, r in zip(fused, reference, strict=True)])
    assert gaps.max() < 1e-5 and (gaps > 1e-6).float().mean() < 1e-3, (float(gaps.max()), int((gaps > 1e-6).sum()))


def test_parameters_of_two_dtypes_are_a_one_line_error() -> None:
    params = [torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2, dtype=torch.float64))]
    for p in params:
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in params]
    optimizer = LearnedOptimizer(params, MLPRule(), step_hint=10)
    with pytest.raises(AlgobenchError, match=r"^learned optimizer: parameters of torch.float32 on cpu and "
                                             r"torch.float64 on cpu; it needs one dtype and device$"):  # fmt: skip
        optimizer.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
