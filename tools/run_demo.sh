#!/usr/bin/env bash
# Main demo: prepare the Landsat-7 land-cover tiles, train a tiny S5 ViT +
# UperNet on CPU, evaluate on held-out tiles (mIoU), save prediction pictures
# and a georeferenced class map of the whole scene.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
CONFIG=configs/demo/upernet_vit-tiny_landcover.py
WORK=${WORK:-work_dirs/demo_landcover}
"$PY" tools/dataset_converters/prepare_landcover.py --out data/landcover_nc
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK" "$@"
CKPT="$WORK/$(cat "$WORK/last_checkpoint" | xargs basename)"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test" \
    --show-dir "$WORK/test/vis"
# the six band files, comma-separated: one scene stacked on the fly
SCENE=$("$PY" tools/dataset_converters/prepare_landcover.py --print-bands |
    tail -n 1)
"$PY" tools/infer_scene.py "$CONFIG" "$CKPT" "$SCENE" --out "$WORK/scene" \
    --tile-size 32 --stride 16 --quicklook
echo
echo "demo done: metrics in $WORK/test, pictures in $WORK/test/vis, scene map in $WORK/scene"
