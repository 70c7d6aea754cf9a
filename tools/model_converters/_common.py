"""The converter CLIs' shared part: read the source checkpoint, shared
options, report, check against a config and write the result."""
import argparse
import sys
from pathlib import Path
from typing import Dict, Mapping, Optional

import torch
from torch import Tensor

from s5_mm.models.utils.ckpt_convert import (ConversionResult, compare_keys,
                                             unwrap_state_dict)


def load_checkpoint_state(path: str,
                          unsafe: bool = False) -> Dict[str, Tensor]:
    """Read a checkpoint file and return its flat tensor dict (see
    ``unwrap_state_dict``).

    Files are read with ``weights_only=True`` (argparse Namespaces allowed,
    as in MAE checkpoints); ``unsafe=True`` allows arbitrary pickles.
    """
    try:
        if unsafe:
            ckpt = torch.load(path, map_location='cpu', weights_only=False)
        else:
            with torch.serialization.safe_globals([argparse.Namespace]):
                ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f'checkpoint not found: {path}') from None
    except Exception as e:  # pickle / format errors
        raise RuntimeError(
            f'cannot read checkpoint {path}: {e}\n(if the file is trusted and '
            'holds other Python objects, retry with --unsafe-pickle)') from e
    return unwrap_state_dict(ckpt, path)


def check_against_config(state_dict: Mapping[str, Tensor],
                         config: str) -> bool:
    """Print missing / unexpected / mismatched keys of ``state_dict`` against
    the model of ``config`` (built on the meta device, so any size is free).
    A backbone-only ``state_dict`` is compared with the model's backbone.
    Returns True when there is a problem."""
    from mmengine.config import Config
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401  (registers the s5_mm modules)
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pop('init_cfg', None)
    with torch.device('meta'):
        model = ROOT_MODELS.build(model_cfg)
    expected = model.state_dict()
    top = {k.split('.', 1)[0] for k in expected}
    if not any(k.split('.', 1)[0] in top
               for k in state_dict) and hasattr(model, 'backbone'):
        expected = model.backbone.state_dict()
        print('comparing with the model backbone')
    missing, unexpected, mismatched = compare_keys(state_dict, expected)
    for title, keys in (('MISSING in the converted checkpoint',
                         missing), ('UNEXPECTED for the model', unexpected),
                        ('SHAPE MISMATCH', mismatched)):
        if keys:
            print(f'{title} ({len(keys)}):')
            print('\n'.join(f'  {k}' for k in keys))
    if not (missing or unexpected or mismatched):
        print(f'all {len(expected)} model keys present with matching shapes')
    return bool(missing or unexpected or mismatched)


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """Options every converter takes."""
    parser.add_argument('--config',
                        help='model config to check the keys against')
    parser.add_argument('--strict', action='store_true',
                        help='fail on unknown or missing keys')
    parser.add_argument(
        '--unsafe-pickle', action='store_true',
        help='allow arbitrary pickled objects (trusted files only)')


def save_conversion(result: ConversionResult, src: str, dst: str, fmt: str,
                    config: Optional[str] = None,
                    strict: bool = False) -> None:
    """Print the key report, check against ``config`` and write ``dst``;
    with ``strict``, exit without writing when keys are unknown/missing."""
    print(result.report())
    problems = bool(result.unknown)
    if config:
        problems |= check_against_config(result.state_dict, config)
    if strict and problems:
        sys.exit('conversion incomplete (see above); nothing written')
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=result.state_dict,
                    meta=dict(converted_from=str(src), format=fmt)), dst)
    print(f'saved {dst}')
