#!/bin/bash
# rszoo training with torchrun (no SLURM): run this on every node with its NODE_RANK.
#
#   MASTER_ADDR=10.0.0.1 NNODES=2 NODE_RANK=0 bash recipes/slurm/torchrun_multinode.sh recipes/rsground_r1/grpo_3b_8xa800.yaml
#   MASTER_ADDR=10.0.0.1 NNODES=2 NODE_RANK=1 bash recipes/slurm/torchrun_multinode.sh recipes/rsground_r1/grpo_3b_8xa800.yaml
#
# --nproc_per_node must equal the recipe's cluster.devices and --nnodes its cluster.num_nodes (passed below).
set -euo pipefail
recipe=${1:?usage: torchrun_multinode.sh RECIPE [key=value ...]}
shift
: "${MASTER_ADDR:?set MASTER_ADDR to node 0's address}" "${NNODES:?}" "${NODE_RANK:?}"
GPUS=${GPUS_PER_NODE:-8}
exec .venv/bin/torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS" \
  --master_addr "$MASTER_ADDR" --master_port "${MASTER_PORT:-29500}" \
  -m rszoo.cli.main train "$recipe" cluster.num_nodes="$NNODES" cluster.devices="$GPUS" "$@"
