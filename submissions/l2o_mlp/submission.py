"""A learned per-parameter MLP optimizer (``algobench.l2o.rules.MLPRule``, after Metz et al. 2022), native form.

Its weights were meta-trained by ``algobench meta-train --optimizer mlp`` on generated tasks
disjoint from the suite; they ship beside this file (``weights.pt``) with the command and the
compute that made them (``provenance.json``). The rule reads training progress as
step / ``workload.step_hint``. Self-tuning: no hyperparameters; external tuning: ``lr_scale``
multiplies every update.
"""

from pathlib import Path

from algobench.l2o.optim import LearnedOptimizer
from algobench.l2o.weights import load_rule

WEIGHTS = Path(__file__).with_name("weights.pt")


def make_optimizer(params, hyperparameters, workload):
    rule = load_rule(WEIGHTS, "mlp")
    return LearnedOptimizer(params, rule, workload.step_hint, lr_scale=hyperparameters.get("lr_scale", 1.0))
