"""Test (evaluate) a checkpoint with an MM config (MMSeg/MMDet/MMRotate scope).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
                         [--tta] [--out PATH] [--allow-partial]
                         [--tensorboard]
                         [--cfg-options k=v ...] [--launcher pytorch]

A checkpoint whose weights do not cover the model (missing prefixes, other
shapes) is refused unless --allow-partial.

--out: segmentation configs write per-image prediction maps into the PATH
folder (multi-dataset configs: PATH/<dataset_name>/; the S4P teacher-student
test loop: PATH/<network>/); detection configs dump the raw results to the
PATH pickle.

--tta: each test dataset's pipeline becomes its TTA pipeline, the config key
``<prefix>_tta_pipeline`` beside the ``<prefix>_test_pipeline`` it uses
(``test_pipeline`` -> ``tta_pipeline``; of equal ones, the prefix of its
dataset name), else (one test dataset) ``tta_pipeline``; the model is
wrapped in the config's ``tta_model``.
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys

# a python without the project's packages (not the virtual environment)
if not all(importlib.util.find_spec(m) for m in ('torch', 'mmengine',
                                                 's5_mm')):
    sys.exit(f'{sys.executable} lacks torch / mmengine / s5_mm: run the '
             'tools with the project environment, e.g. '
             f'.venv/bin/python {" ".join(sys.argv)}')

from mmengine.config import ConfigDict, DictAction  # noqa: E402

from s5_mm.utils import build_runner, prepare_scope  # noqa: E402
from s5_mm.utils.checkpoint import check_checkpoint_file  # noqa: E402
from s5_mm.utils.checkpoint import load_checked  # noqa: E402
from s5_mm.utils.config import (load_config, merge_cfg_options,  # noqa: E402
                                resolve_data_roots)
from s5_mm.utils.tensorboard import enable_tensorboard  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a s5_mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--allow-partial', action='store_true',
        help='use a checkpoint that lacks some model weights or has other '
        'shapes (those stay randomly initialised); refused by default')
    parser.add_argument('--work-dir', help='directory for the metric logs')
    parser.add_argument(
        '--show-dir', help='directory where painted predictions are saved')
    parser.add_argument(
        '--show', action='store_true', help='show predictions in a window')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='interval of --show (s)')
    parser.add_argument(
        '--out', type=str,
        help='seg: folder for prediction maps; det: .pkl file of results')
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation: '
        "tta_model and each test dataset's tta pipeline (module doc)")
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. test_dataloader.batch_size=2')
    parser.add_argument(
        '--tensorboard', action='store_true',
        help='also log scalars (losses, metrics) as TensorBoard events '
        'under the work dir (needs requirements/optional.txt)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _enable_visualization(cfg, args, task):
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise KeyError(
            '--show/--show-dir need default_hooks.visualization in the '
            'config (SegVisualizationHook or DetVisualizationHook)')
    vis = hooks.visualization
    vis.draw = True
    if args.show:
        vis.show = True
        vis.wait_time = args.wait_time
    if args.show_dir:
        if task == 'seg':
            # SegVisualizationHook writes under visualizer.save_dir.
            cfg.visualizer.save_dir = args.show_dir
        else:
            vis.test_out_dir = args.show_dir
        cfg.visualizer.setdefault('vis_backends',
                                  [dict(type='LocalVisBackend')])


def _set_output(cfg, args, task):
    if task == 'seg':
        # (MMSeg's tools/test.py also sets keep_results, which its 1.x
        # IoUMetric ignores)
        cfg.test_evaluator['output_dir'] = args.out
        return
    if not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out for detection must be a .pkl file, '
                         f'got {args.out}')
    evaluator = cfg.test_evaluator
    dump = ConfigDict(type='DumpDetResults', out_file_path=args.out)
    if isinstance(evaluator, (list, tuple)):
        cfg.test_evaluator = list(evaluator) + [dump]
    elif evaluator.get('type') == 'MultiDatasetsEvaluator' or \
            'metrics' in evaluator:
        evaluator.metrics = list(evaluator.metrics) + [dump]
    else:
        cfg.test_evaluator = [evaluator, dump]


def _tta_pipeline_key(cfg, dataset, name, single):
    """Config key of the TTA pipeline of one test dataset (module doc)."""
    prefixes = [key[:-len('test_pipeline')] for key, value in cfg.items()
                if key.endswith('test_pipeline')
                and value == dataset.get('pipeline')]
    # equal pipelines of several bases: the dataset's own name first
    prefixes.sort(key=lambda p: p != f'{name}_')
    tried = [f'{p}tta_pipeline' for p in prefixes]
    if single:
        tried.append('tta_pipeline')
    for key in tried:
        if key in cfg:
            return key
    what = name or dataset.get('type', 'dataset')
    raise KeyError(
        f'--tta: no TTA pipeline for the test dataset {what!r} (tried '
        f'{list(dict.fromkeys(tried))}): define <prefix>_tta_pipeline beside '
        'the <prefix>_test_pipeline it uses, or tta_pipeline for a single '
        'test dataset (TestTimeAug pipelines, see configs/_base_/datasets)')


def _enable_tta(cfg):
    if not cfg.get('tta_model'):
        raise KeyError('--tta needs tta_model in the config (e.g. '
                       "dict(type='SegTTAModel'))")
    dataset = cfg.test_dataloader.dataset
    # a concatenation (MDFConcatDataset): each part gets its own
    parts = dataset.datasets if 'datasets' in dataset and \
        'pipeline' not in dataset else [dataset]
    names = dataset.get('dataset_names') or [None] * len(parts)
    for part, name in zip(parts, names):
        part.pipeline = cfg[_tta_pipeline_key(cfg, part, name,
                                              len(parts) == 1)]
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def build_test_cfg(args):
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
    cfg.load_from = check_checkpoint_file(args.checkpoint)
    resolve_data_roots(cfg, ['test_dataloader'])
    task = prepare_scope(cfg)
    if args.show or args.show_dir:
        _enable_visualization(cfg, args, task)
    if args.tta:
        _enable_tta(cfg)
    if args.out is not None:
        _set_output(cfg, args, task)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_test_cfg(args)
    runner = build_runner(cfg)
    # refuse before testing random weights; the Runner loads it again
    load_checked(runner.model, cfg.load_from, args.allow_partial)
    return runner.test()


if __name__ == '__main__':
    main()
