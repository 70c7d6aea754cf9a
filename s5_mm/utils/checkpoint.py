"""Reading checkpoints with errors that name the file, checking that a
checkpoint fits a model, and picking the checkpoint to resume from.

- :func:`check_checkpoint_file` / :func:`read_checkpoint`: missing, empty,
  truncated and garbage files fail with the absolute path in the message.
- :func:`load_checked`: load weights into a model through each module's own
  ``_load_from_state_dict`` (so pos-embed resizing, expert splitting and
  the teacher/student mapping apply), and refuse the checkpoint when model
  weights stay missing or mismatched, naming the prefixes, unless
  ``allow_partial``. Checkpoints without ``meta`` (bare state dicts) load.
- :func:`find_resume_checkpoint`: the work dir's ``last_checkpoint`` when
  that file is complete, else the newest complete checkpoint, with a
  warning.
"""
import glob
import logging
import os
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from mmengine.logging import print_log

from .atomic import is_partial


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read or does not fit the model."""


def _abs(path) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def checkpoint_problem(path) -> Optional[str]:
    """Why ``path`` is not a complete checkpoint file (None when it looks
    complete). Cheap: reads the zip directory at the file's end, which a
    truncated or partly written file lacks."""
    if not os.path.exists(path):
        return 'file not found'
    if os.path.isdir(path):
        return 'a folder, not a checkpoint file'
    size = os.path.getsize(path)
    if size == 0:
        return 'empty file (0 bytes)'
    with open(path, 'rb') as f:
        head = f.read(4)
    if zipfile.is_zipfile(path):
        return None
    if head.startswith(b'PK'):
        return (f'truncated or incomplete ({size} bytes, the zip directory '
                'at its end is missing)')
    if head[:1] == b'\x80':  # legacy (non-zip) torch.save pickle
        return None
    return 'not a PyTorch checkpoint (neither a zip archive nor a pickle)'


def check_checkpoint_file(path, what: str = 'checkpoint') -> str:
    """Raise naming the absolute path unless ``path`` is a complete
    checkpoint file; return the absolute path."""
    full = _abs(path)
    problem = checkpoint_problem(full)
    if problem == 'file not found':
        raise FileNotFoundError(f'{what} not found: {full}')
    if problem is not None:
        raise CheckpointError(f'cannot read {what} ({problem}): {full}')
    return full


def read_checkpoint(path, map_location='cpu') -> dict:
    """Load a checkpoint as the Runner does (mmengine's loader); every
    failure names the absolute path."""
    from mmengine.runner.checkpoint import _load_checkpoint
    full = check_checkpoint_file(path)
    try:
        ckpt = _load_checkpoint(full, map_location=map_location)
    except Exception as e:  # pickle, zip and format errors
        raise CheckpointError(f'{type(e).__name__}: {e}; cannot read '
                              f'checkpoint {full}') from e
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f'expected a dict, got {type(ckpt).__name__}; '
                              f'not a model checkpoint: {full}')
    return ckpt


def state_dict_of(ckpt: Mapping) -> 'OrderedDict':
    """The weights of a loaded checkpoint: its ``state_dict`` or, for a
    bare state dict, the checkpoint itself; a ``module.`` prefix (DDP) is
    stripped, as the Runner does."""
    state = ckpt.get('state_dict', ckpt)
    out = OrderedDict((re.sub(r'^module\.', '', k), v)
                      for k, v in state.items())
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:
        out._metadata = metadata
    return out


def unwrap_model(model):
    """The model a checkpoint's keys refer to: without DDP / TTA wrappers."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


@dataclass
class CheckpointFit:
    """What loading a state dict into a model left out."""
    total: int
    missing: List[str] = field(default_factory=list)
    mismatched: Dict[str, str] = field(default_factory=dict)
    unexpected: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    # weights per top-level prefix of the model
    prefix_totals: Dict[str, int] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return not (self.missing or self.mismatched or self.errors)

    def summary(self) -> str:
        """Missing / mismatched weights grouped by top-level prefix."""
        bad = sorted(set(self.missing) | set(self.mismatched))
        groups: Dict[str, List[str]] = OrderedDict()
        for k in bad:
            groups.setdefault(k.split('.', 1)[0], []).append(k)
        parts = []
        for prefix, keys in groups.items():
            total = self.prefix_totals.get(prefix, len(keys))
            n_miss = sum(k in self.missing for k in keys)
            n_mis = len(keys) - n_miss
            what = []
            if n_miss:
                what.append(f'{"all " if n_miss == total else ""}{n_miss} '
                            f'of {total} missing')
            if n_mis:
                what.append(f'{n_mis} shape-mismatched')
            parts.append(f'{prefix}.* ({", ".join(what)})')
        text = '; '.join(parts)
        if self.mismatched:
            key = next(iter(self.mismatched))
            text += f'; e.g. {key}: {self.mismatched[key]}'
        if self.errors:
            text += f'; {self.errors[0]}'
        return text


_SIZE_MISMATCH = re.compile(r'size mismatch for ([^:]+): (.*)$', re.S)


def load_state_dict_report(model, state_dict: Mapping) -> CheckpointFit:
    """Load ``state_dict`` into ``model`` (non-strict, as mmengine does)
    and report what did not load."""
    import torch.nn.modules.module as torch_module
    model = unwrap_model(model)
    state = OrderedDict(state_dict)
    metadata = getattr(state_dict, '_metadata', None)
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []

    # the recursion of torch's Module.load_state_dict, collecting instead of
    # raising (a size mismatch raises there even when not strict)
    def load(module, prefix=''):
        local_meta = {} if metadata is None else metadata.get(prefix[:-1], {})
        module._load_from_state_dict(state, prefix, local_meta, True,
                                     missing, unexpected, errors)
        for name, child in module._modules.items():
            if child is not None:
                load(child, prefix + name + '.')
        incompatible = torch_module._IncompatibleKeys(missing, unexpected)
        for hook in module._load_state_dict_post_hooks.values():
            hook(module, incompatible)

    load(model)
    expected = [k for k in model.state_dict()
                if not k.endswith('num_batches_tracked')]
    totals: Dict[str, int] = {}
    for k in expected:
        top = k.split('.', 1)[0]
        totals[top] = totals.get(top, 0) + 1
    fit = CheckpointFit(total=len(expected), prefix_totals=totals)
    fit.missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    fit.unexpected = list(unexpected)
    for msg in errors:
        m = _SIZE_MISMATCH.match(msg)
        if m:
            fit.mismatched[m.group(1)] = m.group(2).strip()
        else:
            fit.errors.append(msg)
    return fit


def load_checked(model, path, allow_partial: bool = False,
                 map_location='cpu') -> dict:
    """Read the checkpoint at ``path`` and load it into ``model``.

    Raises :class:`CheckpointError` naming the file and the missing or
    mismatched prefixes when model weights do not come from the file,
    unless ``allow_partial`` (then it warns). Unexpected keys only warn.
    Returns the loaded checkpoint dict.
    """
    full = _abs(path)
    ckpt = read_checkpoint(full, map_location)
    state = state_dict_of(ckpt)
    fit = load_state_dict_report(model, state)
    if fit.unexpected:
        tops = sorted({k.split('.', 1)[0] for k in fit.unexpected})
        print_log(f'{len(fit.unexpected)} checkpoint weights the model '
                  f'does not have (prefixes {tops}) were ignored: {full}',
                  logger='current', level=logging.WARNING)
    if not fit.fits:
        n_bad = len(set(fit.missing) | set(fit.mismatched))
        text = (f'{n_bad} of {fit.total} model weights are not in the '
                f'checkpoint or do not fit: {fit.summary()}')
        if fit.unexpected:
            tops = sorted({k.split('.', 1)[0] + '.*' for k in fit.unexpected})
            text += f' (the checkpoint has unused weights under {tops})'
        if not allow_partial:
            raise CheckpointError(
                f'{text}. The model would run on random weights there; '
                'pass --allow-partial to use it anyway. Checkpoint: '
                f'{full}')
        print_log(f'{text} (--allow-partial): {full}', logger='current',
                  level=logging.WARNING)
    return ckpt


# ------------------------------------------------------------- resuming
def _candidates(work_dir: str) -> List[str]:
    """Resumable checkpoints of a work dir, newest first (best_* lack the
    optimizer state; partial files are unfinished writes)."""
    files = [p for p in glob.glob(os.path.join(work_dir, '*.pth'))
             if not os.path.basename(p).startswith('best_')
             and not is_partial(p)]

    def key(p):
        m = re.search(r'(\d+)\.pth$', p)
        return (os.path.getmtime(p), int(m.group(1)) if m else -1)

    return sorted(files, key=key, reverse=True)


def _warn(msg: str) -> None:
    print_log(msg, logger='current', level=logging.WARNING)


def find_resume_checkpoint(work_dir, warn=_warn) -> Optional[str]:
    """The checkpoint ``--resume`` continues from, or None.

    ``last_checkpoint`` names it when that file is complete; when it is
    missing, empty, or names an incomplete (e.g. truncated) file, the newest
    complete checkpoint of ``work_dir`` is used, with a warning (passed to
    ``warn``).
    """
    work_dir = _abs(work_dir)
    pointer = os.path.join(work_dir, 'last_checkpoint')
    named = None
    if os.path.isfile(pointer):
        with open(pointer, encoding='utf-8', errors='replace') as f:
            named = f.read().strip() or None
    if named is not None:
        problem = checkpoint_problem(named)
        if problem is None:
            return named
        warn(f'the newest checkpoint {_abs(named)} (named in {pointer}) '
             f'is unusable: {problem}; looking for the previous complete '
             'one')
    for cand in _candidates(work_dir):
        if named is not None and _abs(cand) == _abs(named):
            continue
        problem = checkpoint_problem(cand)
        if problem is None:
            warn(f'resuming from {cand}, the newest complete checkpoint in '
                 f'{work_dir}')
            return cand
        warn(f'skipping {cand}: {problem}')
    return None
