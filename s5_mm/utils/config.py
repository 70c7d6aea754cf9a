"""Config checks shared by the tools: ``--cfg-options`` keys and data roots.

- :func:`merge_cfg_options` rejects a top-level key the config does not have
  and the Runner does not take (``trian_cfg.max_iters=2`` would otherwise be
  silently ignored), naming the close match; a new key below an existing
  dict is allowed but warned about when a sibling is a close match.
- :func:`resolve_data_roots`: a relative ``data_root`` is looked up under the
  working directory, then under the repository root of the config (the
  folder holding its ``configs/``, which the shipped configs are relative
  to); if neither has it the error names both folders searched.
"""
import difflib
import inspect
import logging
import os
import os.path as osp
from typing import Iterable, Iterator, List, Optional, Tuple

from mmengine.logging import print_log

# top-level keys read by tools, loops or toolboxes, not Runner arguments
TOOL_KEYS = ('runner_type', 'default_scope', 'custom_imports', 'tta_model',
             'tta_pipeline', 'train_pipeline', 'test_pipeline', 'launcher',
             'work_dir', 'load_from', 'resume')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def load_config(path):
    """``Config.fromfile``, with a missing or unparsable file named by its
    absolute path."""
    from mmengine.config import Config
    full = osp.abspath(osp.expanduser(path))
    if not osp.isfile(full):
        raise FileNotFoundError(f'config not found: {full}')
    try:
        return Config.fromfile(full)
    except Exception as e:  # syntax, import, missing _base_ file, ...
        msg = f'{type(e).__name__}: {e}; cannot load config {full}'
        try:
            err = type(e)(msg)
        except Exception:  # an exception type with other arguments
            err = RuntimeError(msg)
        raise err from e


def _runner_keys() -> set:
    from mmengine.runner import Runner
    names = inspect.signature(Runner.__init__).parameters
    return {n for n in names if n != 'self'}


def _close(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ''


def _config_name(cfg) -> str:
    name = getattr(cfg, 'filename', None)
    return osp.abspath(name) if name else 'the config'


def check_cfg_options(cfg, options: Optional[dict],
                      extra_keys: Iterable[str] = ()) -> None:
    """Raise for unknown top-level ``--cfg-options`` keys; warn for a new
    nested key that looks like a typo of an existing one."""
    if not options:
        return
    known = set(cfg.keys()) | _runner_keys() | set(TOOL_KEYS) | set(
        extra_keys)
    for key in options:
        parts = key.split('.')
        if parts[0] not in known:
            raise KeyError(
                f"--cfg-options {key}: '{parts[0]}' is not a top-level key "
                f'of {_config_name(cfg)} nor a Runner setting'
                f'{_close(parts[0], known)}')
        node = cfg
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.isdigit() and \
                    int(part) < len(node):
                node = node[int(part)]
            else:
                node = None
                break
        leaf = parts[-1]
        if isinstance(node, dict) and leaf not in node and _close(leaf, node):
            print_log(
                f"--cfg-options {key}: '{leaf}' is new under "
                f"'{'.'.join(parts[:-1])}'{_close(leaf, node)}",
                logger='current', level=logging.WARNING)


def merge_cfg_options(cfg, options: Optional[dict],
                      extra_keys: Iterable[str] = ()) -> None:
    """:func:`check_cfg_options`, then ``cfg.merge_from_dict(options)``."""
    if options:
        check_cfg_options(cfg, options, extra_keys)
        cfg.merge_from_dict(options)


# ------------------------------------------------------------ data roots
def repo_root_of(config_path: Optional[str]) -> Optional[str]:
    """The folder holding the ``configs/`` folder the config lies in."""
    if not config_path:
        return None
    folder = osp.dirname(osp.abspath(config_path))
    while True:
        parent = osp.dirname(folder)
        if osp.basename(folder) == 'configs':
            return parent
        if parent == folder:
            return None
        folder = parent


def _dataset_cfgs(node, where: str) -> Iterator[Tuple[str, dict]]:
    """(location, dict) of every dataset config under ``node`` (wrappers
    such as ConcatDataset / RepeatDataset included)."""
    if isinstance(node, dict):
        if 'data_root' in node:
            yield where, node
        for key in ('dataset', 'datasets'):
            if key in node:
                yield from _dataset_cfgs(node[key], f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _dataset_cfgs(item, f'{where}.{i}')


def resolve_data_roots(cfg, loaders: Iterable[str] = LOADERS) -> List[str]:
    """Make the ``data_root`` of each dataset of ``loaders`` point at an
    existing folder (see the module docstring); return the roots used."""
    base = repo_root_of(getattr(cfg, 'filename', None))
    cwd = os.getcwd()
    used = []
    for loader in loaders:
        node = cfg.get(loader)
        if not node:
            continue
        for where, ds in _dataset_cfgs(node.get('dataset'),
                                       f'{loader}.dataset'):
            root = ds.get('data_root')
            if not isinstance(root, str) or not root:
                continue
            root = osp.expanduser(root)
            if osp.isdir(root):
                used.append(osp.abspath(root))
                continue
            searched = [osp.abspath(root)]
            if not osp.isabs(root) and base and osp.abspath(base) != cwd:
                alt = osp.join(base, root)
                if osp.isdir(alt):
                    print_log(f'{where}.data_root {root!r} is not under the '
                              f'working directory {cwd}; using {alt} '
                              '(relative to the repository root)',
                              logger='current')
                    ds['data_root'] = alt
                    used.append(alt)
                    continue
                searched.append(alt)
            raise FileNotFoundError(
                f'{where}.data_root {root!r} not found (prepare the data or '
                f'set it with --cfg-options {where}.data_root=DIR); '
                f'searched: {", ".join(searched)}')
    return used
