#!/usr/bin/env bash
# Usage: tools/dist_select.sh CONFIG CHECKPOINT NUM_PROCS [select_data.py args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. Without CUDA the ranks
# use gloo on CPU. The launch is tools/dist_test.sh's.
set -euo pipefail
TOOL=select_data.py exec "$(dirname "${BASH_SOURCE[0]}")/dist_test.sh" "$@"
