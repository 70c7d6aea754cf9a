#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#        tools/slurm_select.sh PARTITION JOB_NAME CONFIG CHECKPOINT [select_data.py args...]
# The launch is tools/slurm_test.sh's.
set -euo pipefail
TOOL=select_data.py exec "$(dirname "${BASH_SOURCE[0]}")/slurm_test.sh" "$@"
