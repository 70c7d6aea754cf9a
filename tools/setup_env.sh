#!/usr/bin/env bash
# One-command set-up: creates .venv in the checkout, installs the pinned
# OpenMMLab (OneDL) stack in the order it needs, verifies it and, unless
# --no-demo is given, runs the main demo job. Safe to run again: finished
# steps are skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN_DEMO=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) RUN_DEMO=0 ;;
    *) echo "usage: $0 [--no-demo]" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
C="$ROOT/requirements/constraints.txt"
log() { printf '\n[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

have() { "$PY" - "$@" >/dev/null 2>&1; }

log "build tools (setuptools>=77,<82, wheel, ninja)"
"${PIP[@]}" install -q -c "$C" -r requirements/build.txt

TORCH_V=$(sed -n 's/^torch==//p' "$C")
TV_V=$(sed -n 's/^torchvision==//p' "$C")
if have <<<"import torch, torchvision; assert torch.__version__.split('+')[0]=='$TORCH_V' and torchvision.__version__.split('+')[0]=='$TV_V'; import torchvision.ops; torchvision.ops.nms"; then
  log "torch $TORCH_V / torchvision $TV_V already installed"
else
  log "installing torch $TORCH_V + torchvision $TV_V (registry builds; they run on CPU too)"
  # Explicit versions keep pip off the machine-local torch+cpu wheel,
  # which does not match the registry's torchvision.
  "${PIP[@]}" install -c "$C" "torch==$TORCH_V" "torchvision==$TV_V"
fi

MMCV_V=$(sed -n 's/^onedl-mmcv==//p' "$C")
if have <<<"import mmcv, mmcv.ops; assert mmcv.__version__=='$MMCV_V'; from mmcv.ops import nms_rotated, box_iou_rotated"; then
  log "mmcv $MMCV_V with ops already installed"
else
  # Built from source for CPU ops; the wheel is kept per torch version so a
  # re-install (or a new venv) on this machine skips the ~10 min build.
  WHEELS="${S5MM_WHEEL_CACHE:-$HOME/.cache/s5_mm/wheels}/torch-$TORCH_V-py$("$PY" -c 'import sys;print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/onedl_mmcv-"$MMCV_V"-*.whl >/dev/null 2>&1; then
    log "building onedl-mmcv $MMCV_V with CPU ops (9-12 minutes on 2 cores)"
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "${PIP[@]}" wheel --no-deps --no-build-isolation -c "$C" -w "$WHEELS" "onedl-mmcv==$MMCV_V"
  fi
  log "installing onedl-mmcv from $WHEELS"
  "${PIP[@]}" install -c "$C" --no-deps "$WHEELS"/onedl_mmcv-"$MMCV_V"-*.whl
fi

# Stamp of what the last successful install used: unchanged -> skip pip.
STAMP="$VENV/.s5_mm-requirements.sha256"
REQ_SHA=$(cat "$C" requirements/runtime.txt requirements/tests.txt setup.py | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$REQ_SHA" ] && \
   have <<<"import os, s5_mm; assert os.path.samefile(os.path.dirname(s5_mm.__file__), '$ROOT/s5_mm')"; then
  log "runtime requirements and s5_mm already installed"
else
  log "runtime and test requirements"
  "${PIP[@]}" install -q -c "$C" -r requirements/runtime.txt -r requirements/tests.txt
  log "s5_mm (editable)"
  "${PIP[@]}" install -q -c "$C" --no-deps --no-build-isolation -e .
  echo "$REQ_SHA" > "$STAMP"
fi

# Optional: TensorBoard (tools/train.py --tensorboard), plots. A failure
# here does not stop the set-up.
if ! have <<<"import tensorboard, matplotlib"; then
  log "optional requirements (requirements/optional.txt)"
  "${PIP[@]}" install -q -c "$C" -r requirements/optional.txt ||
    echo "[setup] WARNING: requirements/optional.txt did not install; --tensorboard will not work" >&2
fi

# Chromium (Debian package) renders the demo report in the headless-browser
# test (tests/tools/test_run_s5_pipeline.py); best-effort.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="$(command -v sudo || true)"
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
    log "chromium (apt-get install -y chromium)"
    { $SUDO apt-get install -y chromium >/dev/null ||
      { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y chromium >/dev/null; }; } ||
      echo "[setup] WARNING: apt-get could not install chromium; the report's browser test will be skipped" >&2
  else
    echo "[setup] WARNING: no chromium and no apt-get (or root/sudo) to install it: install Chromium yourself, or the report's headless-browser test is skipped" >&2
  fi
fi

log "verifying the stack"
"$PY" - <<'PYEOF'
import torch, torchvision, mmengine, mmcv, mmdet, mmseg, mmpretrain, mmrotate, rasterio
import mmseg.models, mmdet.models, mmpretrain.models, mmrotate.models  # noqa: F401
from mmcv.ops import nms_rotated, box_iou_rotated, RoIAlignRotated  # noqa: F401
import s5_mm
boxes = torch.tensor([[10., 10., 8., 4., 0.3], [10., 10., 8., 4., 0.35]])
_, keep = nms_rotated(boxes, torch.tensor([0.9, 0.8]), 0.5)
assert keep.tolist() == [0], keep
print('torch', torch.__version__, '| torchvision', torchvision.__version__,
      '| mmengine', mmengine.__version__, '| mmcv', mmcv.__version__,
      '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__,
      '| mmpretrain', mmpretrain.__version__, '| mmrotate', mmrotate.__version__,
      '| rasterio', rasterio.__version__, '| s5_mm', s5_mm.__version__)
print('stack OK')
PYEOF

if [ "$RUN_DEMO" = 1 ]; then
  log "main demo: the S5 pipeline on the Landsat-7 land-cover scene (3-8 minutes on 2 cores)"
  bash "$ROOT/tools/run_demo.sh"
fi
