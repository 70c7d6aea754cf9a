#!/usr/bin/env bash
# Usage: tools/dist_select.sh CONFIG CHECKPOINT NUM_PROCS [select_data.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Without CUDA the ranks
# use gloo on CPU.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=${PYTHON:-python}
PYTHONPATH="$DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    "$DIR/select_data.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
