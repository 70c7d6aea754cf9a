#!/usr/bin/env bash
# Main demo: the whole S5 method on the Landsat-7 land-cover scene (CPU) -
# scoring model, entropy + diversity selection, S4P, MoE-MDF fine-tuning on
# two label spaces, held-out evaluation of every stage and a georeferenced
# class map of the scene; report in work_dirs/s5_pipeline/index.html.
# Finished stages are skipped on a re-run; `--from STAGE` reruns from one.
# Options go to tools/run_s5_pipeline.py (e.g. --tensorboard).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
"$PY" tools/run_s5_pipeline.py "$@"
echo
echo "demo done: open work_dirs/s5_pipeline/index.html (or report.md)"
