"""Multi-dataset fine-tuning (MoE-MDF, S5_METHOD.md sections 4-5) options of
:class:`MultiHeadEncoderDecoder`, kept out of the routing code.

``train_cfg`` keys (all optional):

- ``dataset_loss_weights``: ``{name: w}``; every loss of dataset ``name``
  (decode and auxiliary) is multiplied by ``w``. Default 1 (equal weights).
- ``dataset_start_iters``: ``{name: it}``; samples of ``name`` are left out
  of the step (no backbone pass, no loss) before iteration ``it``. Default 0.
- ``touch_unused_params``: ``None`` (default: when more than one process
  trains), ``True`` or ``False``. Adds ``0 * sum`` of the parameters of the
  datasets absent from the local batch (their heads and experts) to the
  loss, so every parameter gets a gradient on every rank and DDP runs with
  ``find_unused_parameters=False`` (a static graph). A dataset absent from
  every rank in a step (e.g. before its start iteration) then gets zero
  gradients, which AdamW still decays by ``lr * weight_decay``; with
  ``find_unused_parameters=True`` (and in one process) its head is skipped.
  S5's sampling puts every dataset in every batch: nothing is touched.
- ``s4p_branch``: ``'student'`` (default) or ``'teacher'``: which copy of an
  S4P checkpoint (keys ``student.*`` / ``teacher.*``) initialises the model.

Under DDP each dataset's mean CE is divided by its pixel count summed over
the ranks / world size (one all-reduce per step, on every rank), so that W
processes x batch b train as one process x batch W * b however a dataset's
samples and ignored pixels fall on the ranks
(:mod:`s5_mm.models.utils.dist_loss`).

``test_cfg`` keys besides MMSeg's (``mode``, ``crop_size``, ``stride``):

- ``flip``: ``False``, ``True`` (= horizontal) or a list of
  ``'horizontal'`` / ``'vertical'``: the softmax of the plain and the
  flipped predictions is averaged (S5: Vaihingen, Potsdam).
- ``align_corners``: ``None`` (default: the decode heads' own setting,
  ``False`` in the S5 configs) or a bool for every bilinear upsampling of
  the logits at test time (decoder resolution -> input, and -> the original
  size). ``True`` is the released S5 code's upsampling: a converted
  official checkpoint then reproduces its predictions
  (``tools/model_converters/s5official2s5mm.py`` prints the setting).
- ``datasets``: ``{name: {key: value}}`` per-dataset overrides of the keys
  above, e.g. ``loveda=dict(mode='slide', crop_size=(512, 512),
  stride=(256, 256))``.
- ``default_dataset``: the dataset (head and MoE expert) of samples whose
  metainfo names none, e.g. images given to ``mmseg.apis.inference_model``
  or ``MMSegInferencer``; default None: such samples raise (unless the
  model has one head). Samples of an ``MDFConcatDataset`` keep their own.
"""
import copy
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub, print_log
from torch import Tensor

TRAIN_KEYS = ('dataset_loss_weights', 'dataset_start_iters',
              'touch_unused_params', 's4p_branch')
TEST_MODES = ('whole', 'slide')
FLIP_DIRECTIONS = ('horizontal', 'vertical')


def _check_names(mapping, names: Sequence[str], what: str) -> dict:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise TypeError(f'{what} must be a dict {{dataset_name: value}}, got '
                        f'{type(mapping).__name__}')
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ValueError(f'{what} names datasets {unknown} that have no '
                         f'head; the model has heads {list(names)}')
    return dict(mapping)


def parse_mdf_train_cfg(train_cfg, names: Sequence[str]) -> dict:
    """Validated multi-dataset training options (see the module doc)."""
    cfg = dict(train_cfg or {})
    weights = _check_names(cfg.get('dataset_loss_weights'), names,
                           'train_cfg.dataset_loss_weights')
    for name, w in weights.items():
        if not isinstance(w, (int, float)) or w < 0:
            raise ValueError(f'train_cfg.dataset_loss_weights[{name!r}] must '
                             f'be a number >= 0, got {w!r}')
    starts = _check_names(cfg.get('dataset_start_iters'), names,
                          'train_cfg.dataset_start_iters')
    for name, it in starts.items():
        if not isinstance(it, int) or it < 0:
            raise ValueError(f'train_cfg.dataset_start_iters[{name!r}] must '
                             f'be an int >= 0, got {it!r}')
    touch = cfg.get('touch_unused_params')
    if touch not in (None, True, False):
        raise ValueError('train_cfg.touch_unused_params must be None, True '
                         f'or False, got {touch!r}')
    branch = cfg.get('s4p_branch', 'student')
    if branch not in ('student', 'teacher'):
        raise ValueError("train_cfg.s4p_branch must be 'student' or "
                         f"'teacher', got {branch!r}")
    return dict(weights={n: float(weights.get(n, 1.)) for n in names},
                starts={n: int(starts.get(n, 0)) for n in names},
                touch=touch, branch=branch)


def _check_test_cfg(cfg: dict, where: str) -> None:
    mode = cfg.get('mode', 'whole')
    if mode not in TEST_MODES:
        raise ValueError(f'{where}.mode must be one of {TEST_MODES}, got '
                         f'{mode!r} (resize to a fixed size in the test '
                         'pipeline: Resize before LoadAnnotations)')
    if mode == 'slide':
        for key in ('crop_size', 'stride'):
            if key not in cfg:
                raise KeyError(f"{where}: mode='slide' needs {key}")
    flip_directions(cfg.get('flip', False), where)
    align = cfg.get('align_corners')
    if align is not None and not isinstance(align, bool):
        raise ValueError(f'{where}.align_corners must be None, True or '
                         f'False, got {align!r}')


def flip_directions(flip, where: str = 'test_cfg') -> List[str]:
    """``flip`` option -> list of directions (empty: no flip averaging)."""
    if flip is False or flip is None:
        return []
    if flip is True:
        return ['horizontal']
    dirs = [flip] if isinstance(flip, str) else list(flip)
    bad = [d for d in dirs if d not in FLIP_DIRECTIONS]
    if bad or not dirs:
        raise ValueError(f'{where}.flip must be a bool or a list of '
                         f'{FLIP_DIRECTIONS}, got {flip!r}')
    return dirs


def dataset_test_cfgs(test_cfg, names: Sequence[str]) -> Dict[str, ConfigDict]:
    """Per-dataset test settings: ``test_cfg`` without ``datasets``, updated
    by ``test_cfg.datasets[name]``."""
    base = dict(copy.deepcopy(dict(test_cfg or {})))
    per = _check_names(base.pop('datasets', None), names,
                       'test_cfg.datasets')
    default = base.get('default_dataset')
    if default is not None and default not in names:
        raise ValueError(f'test_cfg.default_dataset {default!r} has no head; '
                         f'the model has heads {list(names)}')
    out = {}
    for name in names:
        cfg = dict(base)
        override = per.get(name) or {}
        if not isinstance(override, dict):
            raise TypeError(f'test_cfg.datasets[{name!r}] must be a dict, got '
                            f'{type(override).__name__}')
        if 'default_dataset' in override:
            raise ValueError(f'test_cfg.datasets[{name!r}]: default_dataset '
                             'is a model-wide key (test_cfg.default_dataset)')
        cfg.update(copy.deepcopy(dict(override)))
        _check_test_cfg(cfg, f'test_cfg.datasets[{name!r}]'
                        if name in per else 'test_cfg')
        out[name] = ConfigDict(cfg)
    return out


def current_iter() -> Optional[int]:
    """Training iteration from mmengine's message hub (None outside a
    runner)."""
    it = MessageHub.get_current_instance().get_info('iter')
    return None if it is None else int(it)


def distributed_world() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and \
        dist.get_world_size() > 1


def drop_not_started(inputs: Tensor, data_samples, names: List[str],
                     starts: Dict[str, int]):
    """Samples of datasets whose start iteration is reached (all when no
    start iteration is set)."""
    if not any(starts.values()):
        return inputs, data_samples, names
    it = current_iter() or 0
    keep = [i for i, n in enumerate(names) if it >= starts[n]]
    if len(keep) == len(names):
        return inputs, data_samples, names
    index = torch.tensor(keep, dtype=torch.long, device=inputs.device)
    return (inputs.index_select(0, index), [data_samples[i] for i in keep],
            [names[i] for i in keep])


def weight_losses(losses: dict, weights: Dict[str, float]) -> dict:
    """Multiply the ``loss`` entries of ``<dataset>.*`` keys by the
    dataset's weight (weight 1: untouched)."""
    for key, value in losses.items():
        w = weights.get(key.split('.', 1)[0], 1.)
        if 'loss' in key and w != 1.:
            losses[key] = [v * w for v in value] if isinstance(
                value, (list, tuple)) else value * w
    return losses


def add_zero_touch(losses: dict, params: Sequence[torch.nn.Parameter]
                   ) -> dict:
    """Add ``0 * sum(params)`` to the first loss tensor (or as
    ``loss_zero``): the value is unchanged, every parameter gets a (zero)
    gradient, so DDP needs no ``find_unused_parameters``."""
    if not params:
        return losses
    zero = sum(p.sum() for p in params) * 0.
    key = next((k for k, v in losses.items()
                if 'loss' in k and isinstance(v, Tensor)), None)
    if key is None:
        losses['loss_zero'] = zero
    else:
        losses[key] = losses[key] + zero
    return losses


def strip_semi_prefix(state_dict: dict, prefix: str,
                      branch: str = 'student') -> Optional[str]:
    """In place: an S4P checkpoint (``student.*``, ``teacher.*`` keys under
    ``prefix``) becomes a plain segmentor state dict of the ``branch`` copy
    (the other copy is dropped; ``branch`` falls back to the one present).
    Returns the branch used, or None when the keys have no such prefix."""
    own = [k for k in state_dict if k.startswith(prefix)]
    heads = {k[len(prefix):].split('.', 1)[0] for k in own}
    if not heads & {'student', 'teacher'}:
        return None
    if branch not in heads:
        branch = 'teacher' if branch == 'student' else 'student'
    dropped = 0
    for key in own:
        rel = key[len(prefix):]
        top = rel.split('.', 1)[0]
        if top not in ('student', 'teacher'):
            continue  # e.g. buffers of the S4P wrapper itself
        value = state_dict.pop(key)
        if top == branch:
            state_dict[prefix + rel[len(branch) + 1:]] = value
        else:
            dropped += 1
    print_log(f'S4P checkpoint: initialising from its {branch} '
              f'({dropped} keys of the other copy dropped)', logger='current')
    return branch


def flip_average(infer: Callable[[Tensor, List[dict]], Tensor],
                 inputs: Tensor, batch_img_metas: List[dict],
                 directions: Sequence[str]) -> Tensor:
    """Log of the mean softmax of ``infer`` on ``inputs`` and on each flip
    (flipped back): logits whose softmax is the averaged probability, as
    MMSeg's ``SegTTAModel`` averages."""
    probs = infer(inputs, batch_img_metas).softmax(dim=1)
    for direction in directions:
        dim = 3 if direction == 'horizontal' else 2
        flipped = infer(inputs.flip(dims=(dim, )), batch_img_metas)
        probs = probs + flipped.softmax(dim=1).flip(dims=(dim, ))
    probs = probs / (1 + len(directions))
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
