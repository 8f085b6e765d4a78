"""Can AlgoPerf v0.5's Distributed Shampoo run on a CPU at any world size?

The v0.5 submission builds ``DistributedShampoo`` with ``DDPShampooConfig(num_trainers_per_group=8)``.
In a one-process group (what algobench's trials provide) its distributor refuses: 8 trainers
per group need a world of at least 8. This script starts ``--ranks`` gloo processes on this
machine, builds the optimizer on each exactly as the submission configures it (its own classes,
unchanged, imported from the checkout) and takes one step, then prints each rank's outcome.

    python benchmarks/check_shampoo_ranks.py --import-root DIR --ranks 8

``DIR`` holds ``submissions/submissions_algorithms_v0_5/AlgoPerf_Team_21/external_tuning/
shampoo_submission`` (a link to the folder in a checkout of mlcommons/submissions_algorithms).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

PACKAGE = (
    "submissions.submissions_algorithms_v0_5.AlgoPerf_Team_21.external_tuning.shampoo_submission"
    ".optimizers.distributed_shampoo"
)
TRAINERS_PER_GROUP = 8  # hard-coded in the submission's init_optimizer_state
LAYERS = 5  # ten parameter blocks: every one of 8 ranks is assigned at least one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-root", required=True, help="the folder that holds `submissions/…`")
    parser.add_argument("--ranks", type=int, default=TRAINERS_PER_GROUP)
    parser.add_argument("--port", type=int, default=29533)
    args = parser.parse_args(argv)
    import torch.multiprocessing as mp

    mp.spawn(_rank, args=(args.ranks, args.import_root, args.port), nprocs=args.ranks)
    return 0


def _rank(rank: int, world: int, import_root: str, port: int) -> None:
    import torch
    import torch.distributed as dist

    sys.path.insert(0, import_root)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    shampoo = importlib.import_module(f"{PACKAGE}.distributed_shampoo")
    types = importlib.import_module(f"{PACKAGE}.shampoo_types")
    model = torch.nn.Sequential(*(torch.nn.Linear(32, 32) for _ in range(LAYERS)))
    try:
        config = types.DDPShampooConfig(num_trainers_per_group=TRAINERS_PER_GROUP, communicate_params=True)
        optimizer = shampoo.DistributedShampoo(model.parameters(), lr=1e-3, distributed_config=config)
        model(torch.randn(4, 32)).sum().backward()
        optimizer.step()
        outcome = "ok: one step taken"
    except Exception as error:  # the outcome is the report
        outcome = f"{type(error).__name__}: {error}"
    print(f"rank {rank} of {world}: {outcome}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
