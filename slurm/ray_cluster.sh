#!/usr/bin/env bash
# A Ray cluster inside one SLURM allocation: the head on the first node, a worker on every other
# node, then COMMAND on the head node with RAY_ADDRESS set; the cluster stops when COMMAND ends.
#
#   sbatch --nodes 4 --ntasks-per-node 1 --cpus-per-task 16 --time 120 \
#       slurm/ray_cluster.sh algobench tune submissions/adamw/submission.py --tuner pb2 --population 32 \
#       --experiment-dir /shared/runs/pb2
#
# Needs: the same Python environment (with algobench and ray) on every node, and the experiment
# directory on a filesystem every node sees (trials write their results there).
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: sbatch --nodes N ... $0 COMMAND [ARGS...]" >&2; exit 2; }

PORT="${RAY_PORT:-6379}"
CPUS="${SLURM_CPUS_PER_TASK:-$(nproc)}"
mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
HEAD="${NODES[0]}"
HEAD_IP="$(srun --nodes 1 --ntasks 1 -w "$HEAD" hostname --ip-address | awk '{print $1}')"
export RAY_ADDRESS="$HEAD_IP:$PORT"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"  # the token in ~/.ray/auth_token (a shared home) reaches every node

srun --nodes 1 --ntasks 1 -w "$HEAD" \
    ray start --head --node-ip-address "$HEAD_IP" --port "$PORT" --num-cpus "$CPUS" \
    --include-dashboard=false --disable-usage-stats --block &
sleep 10
for node in "${NODES[@]:1}"; do
    srun --nodes 1 --ntasks 1 -w "$node" \
        ray start --address "$RAY_ADDRESS" --num-cpus "$CPUS" --disable-usage-stats --block &
done
sleep 5
ray status --address "$RAY_ADDRESS" || true

status=0
"$@" || status=$?
ray stop --force >/dev/null 2>&1 || true
kill $(jobs -p) 2>/dev/null || true
exit "$status"
