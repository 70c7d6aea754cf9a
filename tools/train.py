"""Train a segmentor or detector from an MM config (MMSeg/MMDet/MMRotate scope).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--tensorboard] [--cfg-options k=v ...]
                          [--launcher pytorch]

--resume without CKPT continues from the work dir's last_checkpoint, or, if
that file is truncated or missing, from the newest complete checkpoint (with
a warning); with none it says so and starts a fresh run. Every run stops at
the first non-finite loss before saving, and checkpoints are written under a
temporary name then renamed (s5_mm.utils.build_runner). Unknown top-level
--cfg-options keys and missing data roots fail naming the key or folder.
"""
import argparse
import importlib.util
import logging
import os
import os.path as osp
import sys

# a python without the project's packages (not the virtual environment)
if not all(importlib.util.find_spec(m) for m in ('torch', 'mmengine',
                                                 's5_mm')):
    sys.exit(f'{sys.executable} lacks torch / mmengine / s5_mm: run the '
             'tools with the project environment, e.g. '
             f'.venv/bin/python {" ".join(sys.argv)}')

from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402

from s5_mm.utils import build_runner, prepare_scope  # noqa: E402
from s5_mm.utils.checkpoint import (check_checkpoint_file,  # noqa: E402
                                    find_resume_checkpoint)
from s5_mm.utils.config import (load_config, merge_cfg_options,  # noqa: E402
                                resolve_data_roots)
from s5_mm.utils.tensorboard import enable_tensorboard  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a s5_mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work '
        'dir when no path is given')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--tensorboard', action='store_true',
        help='also log scalars (losses, metrics) as TensorBoard events '
        'under the work dir (needs requirements/optional.txt)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    # torchrun sets LOCAL_RANK; older launchers pass --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _is_local(path) -> bool:
    return isinstance(path, str) and '://' not in path


def set_resume(cfg, resume, notes):
    """``--resume`` (``'auto'``: the work dir's newest complete checkpoint)
    or ``--resume CKPT``; with nothing to resume from, say so and start a
    fresh run (with the config's ``load_from``, as a run without --resume).
    Warnings go to ``notes`` (for the run's log) and the console."""

    def warn(msg):
        notes.append(msg)
        print_log(msg, logger='current', level=logging.WARNING)

    if resume is None:
        return
    if resume != 'auto':
        cfg.resume = True
        cfg.load_from = (check_checkpoint_file(resume, '--resume checkpoint')
                         if _is_local(resume) else resume)
        return
    ckpt = find_resume_checkpoint(cfg.work_dir, warn)
    if ckpt is None:
        warn(f'--resume: no checkpoint to resume from in '
             f'{osp.abspath(cfg.work_dir)} (no last_checkpoint and no '
             'complete .pth file): training starts from iteration 0')
        cfg.resume = False
        return
    cfg.resume = True
    cfg.load_from = ckpt


def build_train_cfg(args, notes=None):
    """The config of a run; warnings about it are appended to ``notes``."""
    notes = [] if notes is None else notes
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    merge_cfg_options(cfg, args.cfg_options)
    if getattr(args, 'tensorboard', False):
        enable_tensorboard(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        else:
            assert wrapper == 'OptimWrapper', (
                f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    set_resume(cfg, args.resume, notes)
    if not cfg.get('resume') and _is_local(cfg.get('load_from')):
        cfg.load_from = check_checkpoint_file(cfg.load_from,
                                              'load_from checkpoint')
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') and cfg.get('val_dataloader'):
        loaders.append('val_dataloader')
    resolve_data_roots(cfg, loaders)
    prepare_scope(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    notes = []
    cfg = build_train_cfg(args, notes)
    runner = build_runner(cfg)
    for note in notes:  # into the run's log file too
        runner.logger.warning(note)
    runner.train()


if __name__ == '__main__':
    main()
