"""The converter CLIs' shared part: read the source checkpoint, shared
options, report, check against a config and write the result."""
import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Dict, Mapping, Optional

# a python without the project's packages (not the virtual environment)
if not all(importlib.util.find_spec(m) for m in ('torch', 'mmengine',
                                                 's5_mm')):
    sys.exit(f'{sys.executable} lacks torch / mmengine / s5_mm: run the '
             'tools with the project environment, e.g. '
             f'.venv/bin/python {" ".join(sys.argv)}')

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from s5_mm.models.utils.ckpt_convert import (ConversionResult,  # noqa: E402
                                             compare_keys, unwrap_state_dict)
from s5_mm.utils.checkpoint import check_checkpoint_file  # noqa: E402


def load_checkpoint_state(path: str,
                          unsafe: bool = False) -> Dict[str, Tensor]:
    """Read a checkpoint file and return its flat tensor dict (see
    ``unwrap_state_dict``).

    Files are read with ``weights_only=True`` (argparse Namespaces allowed,
    as in MAE checkpoints); ``unsafe=True`` allows arbitrary pickles.
    """
    path = check_checkpoint_file(path)  # missing / empty / truncated
    try:
        if unsafe:
            ckpt = torch.load(path, map_location='cpu', weights_only=False)
        else:
            with torch.serialization.safe_globals([argparse.Namespace]):
                ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # pickle / format errors
        raise RuntimeError(
            f'{e}\n(if the file is trusted and holds other Python objects, '
            f'retry with --unsafe-pickle)\ncannot read checkpoint {path}'
        ) from e
    return unwrap_state_dict(ckpt, path)


def check_against_config(state_dict: Mapping[str, Tensor],
                         config: str) -> Dict[str, int]:
    """Print missing / unexpected / mismatched keys of ``state_dict`` against
    the model of ``config`` (built on the meta device, so any size is free).
    A backbone-only ``state_dict`` is compared with the model's backbone.
    Returns the counts: ``expected``, ``missing``, ``unexpected``,
    ``mismatched``."""
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401  (registers the s5_mm modules)
    from s5_mm.utils.config import load_config
    cfg = load_config(config)
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
    return dict(expected=len(expected), missing=len(missing),
                unexpected=len(unexpected), mismatched=len(mismatched))


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """Options every converter takes."""
    parser.add_argument('--config',
                        help='model config to check the keys against')
    parser.add_argument('--strict', action='store_true',
                        help='fail on unknown or missing keys')
    parser.add_argument(
        '--unsafe-pickle', action='store_true',
        help='allow arbitrary pickled objects (trusted files only)')
    parser.add_argument(
        '--allow-partial', action='store_true',
        help='write the result even when most source keys have no mapping '
        'or it covers under half of the --config model')


def conversion_problem(result: ConversionResult, fmt: str,
                       counts: Optional[Dict[str, int]] = None
                       ) -> Optional[str]:
    """Why the result is too incomplete to write (None when it is not):
    nothing converted, more unknown source tensors than converted ones, or
    under half of the config model's keys present with their shapes."""
    n = len(result.state_dict)
    if n == 0:
        return (f'converted 0 tensors: not a {fmt} checkpoint? '
                f'({len(result.unknown)} unknown, {len(result.dropped)} '
                'dropped source keys)')
    if len(result.unknown) > n:
        return (f'only {n} tensors converted, {len(result.unknown)} source '
                f'keys unknown: probably not a {fmt} checkpoint')
    if counts:
        good = counts['expected'] - counts['missing'] - counts['mismatched']
        if 2 * good < counts['expected']:
            return (f'the result provides {good} of the {counts["expected"]}'
                    ' weights of the --config model')
    return None


def save_conversion(result: ConversionResult, src: str, dst: str, fmt: str,
                    config: Optional[str] = None, strict: bool = False,
                    allow_partial: bool = False) -> None:
    """Print the key report, check against ``config`` and write ``dst``.

    Exits without writing when nothing converted, when the result is too
    incomplete (:func:`conversion_problem`; unless ``allow_partial``) or,
    with ``strict``, when keys are unknown / missing. ``dst`` is written
    under a temporary name and renamed, so a failure keeps an earlier file.
    """
    from s5_mm.utils.atomic import atomic_output
    print(result.report())
    src_full = os.path.abspath(src)
    counts = check_against_config(result.state_dict, config) if config \
        else None
    problem = conversion_problem(result, fmt, counts)
    if problem and (not allow_partial or not result.state_dict):
        hint = '' if not result.state_dict else ' (--allow-partial writes it)'
        sys.exit(f'{problem}; nothing written{hint}. Source: {src_full}')
    problems = bool(result.unknown) or bool(
        counts and (counts['missing'] or counts['unexpected']
                    or counts['mismatched']))
    if strict and problems:
        sys.exit('conversion incomplete (see above); nothing written. '
                 f'Source: {src_full}')
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dst) as tmp:
        torch.save(dict(state_dict=result.state_dict,
                        meta=dict(converted_from=src_full, format=fmt)), tmp)
    print(f'saved {dst}')
