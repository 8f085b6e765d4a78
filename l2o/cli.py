"""``algobench meta-train``: meta-train a learned rule on the task family disjoint from the suite.

    algobench meta-train --optimizer mlp|schedule|lstm --out DIR [--outer-steps N] ...

``algobench/cli.py`` calls ``register(subparsers)``; torch and the rules load only when the
command runs. The same command run again resumes from DIR's checkpoint (a larger
``--outer-steps`` continues a finished run).
"""

from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "meta-train",
        help="meta-train a learned optimizer or schedule (L2O) on generated tasks disjoint from the suite",
        description="Meta-train a learned update rule on randomised small MLPs and CNNs classifying generated "
        "data (never the suite's workloads): antithetic PES for mlp and schedule, truncated backpropagation for "
        "lstm. Writes DIR/weights.pt, DIR/meta_training.json (settings, compute, curves), DIR/meta_loss.png and "
        "DIR/checkpoint.pt; rerunning the same command resumes bit-identically.",
    )
    parser.add_argument("--optimizer", required=True, choices=("mlp", "schedule", "lstm"), help="which rule")
    parser.add_argument("--out", required=True, help="output folder (resumes from its checkpoint)")
    parser.add_argument("--outer-steps", type=int, default=300, help="meta-gradient steps (default: %(default)s)")
    parser.add_argument(
        "--particles", type=int, default=8, help="PES antithetic pairs, or LSTM tasks per step (default: %(default)s)"
    )
    parser.add_argument("--unroll", type=int, default=10, help="inner steps per truncation (default: %(default)s)")
    parser.add_argument("--sigma", type=float, default=0.01, help="PES perturbation scale (default: %(default)s)")
    parser.add_argument("--meta-lr", type=float, default=3e-3, help="Adam's rate on the rule (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of tasks, perturbations and init")
    parser.add_argument("--family", default="default", choices=("default", "toy"), help="task family")
    parser.add_argument("--eval-every", type=int, default=25, help="outer steps between evaluations")
    parser.add_argument("--checkpoint-every", type=int, default=5, help="outer steps between checkpoints")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_meta_train)


def run_meta_train(args: argparse.Namespace) -> int:
    import torch

    from algobench.l2o.meta_train import MetaTrainConfig, MetaTrainer

    torch.set_num_threads(max(args.threads, 1))
    config = MetaTrainConfig(
        optimizer=args.optimizer,
        outer_steps=args.outer_steps,
        particles=args.particles,
        unroll=args.unroll,
        sigma=args.sigma,
        meta_lr=args.meta_lr,
        seed=args.seed,
        family=args.family,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
    )
    command = "algobench " + shlex.join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("algobench") else ""
    trainer = MetaTrainer(config, args.out, command=command, show_progress=not args.quiet)
    state = trainer.run()
    compute = state.compute
    evals = state.history["eval_loss"]
    print(
        f"meta-train {args.optimizer}: {compute['outer_steps']} outer steps, {compute['tasks_seen']} tasks, "
        f"{compute['cpu_seconds']:.0f} CPU-s; evaluation meta-loss {evals[0]:.3f} -> {evals[-1]:.3f}; "
        f"weights: {trainer.out / 'weights.pt'}"
    )
    return 0
