"""MoE-MDF demo on CPU: two label spaces of the Landsat-7 land-cover scene
trained together, compared with plain MDF and single-dataset fine-tuning.

    python tools/run_mdf_demo.py [--work-dir work_dirs/mdf_demo]
        [--data-root data/landcover_nc] [--iters 150] [--pretrain-iters 200]
        [--seeds 0 1 2] [--methods moe plain sdf] [--init CKPT]
        [--src DIR] [--no-fetch] [--overwrite]

1. Cuts the scene into 32 px tiles (``prepare_landcover``) and splits them:
   the training tiles round-robin by name into ``pretrain`` / ``lc7_train``
   / ``lc3_train`` (disjoint); the held-out val tile columns alternately
   into ``tune`` (validation during training, choices) and ``test`` (the
   reported numbers only). ``lc3`` labels (non-vegetation: developed,
   sediment; vegetation: agriculture, herbaceous, shrubland, forest; water)
   are written beside the 7-class ones (``ann_dir/*_coarse``).
2. Pre-trains the plain tiny segmentor on ``pretrain`` (7 classes), once;
   ``--init CKPT`` starts every run from CKPT instead (e.g. the S4P
   checkpoint of ``tools/run_s5_pipeline.py``, student weights).
3. From that checkpoint, per seed: MoE-MDF (``mdf_vit-tiny_landcover.py``),
   plain MDF (``..._plain.py``) and single-dataset fine-tuning (one run per
   dataset, ``..._sdf-lc7.py`` / ``..._sdf-lc3.py``), the same steps and
   tiles per dataset per step; each scored on ``test`` with its protocol:
   lc7 mIoU with horizontal-flip averaging, lc3 mF1 on whole tiles.
4. The first MoE-MDF run is reloaded from its saved config and checkpoint
   with ``tools/test.py``; its scores must equal the in-process ones.

Table (per seed, mean, std) on stdout and ``<work-dir>/results.md``, with
paired 95 % bootstrap intervals over the test tiles of MoE-MDF against each
other method (every method predicts the same tiles and pixels), raw
figures in ``results.json``.
"""
import argparse
import json
import re
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFIGS = dict(
    moe=['configs/demo/mdf_vit-tiny_landcover.py'],
    plain=['configs/demo/mdf_vit-tiny_landcover_plain.py'],
    sdf=['configs/demo/mdf_vit-tiny_landcover_sdf-lc7.py',
         'configs/demo/mdf_vit-tiny_landcover_sdf-lc3.py'],
)
PRETRAIN_CFG = 'configs/demo/mdf_vit-tiny_landcover_pretrain.py'
METHOD_NAMES = dict(moe='MoE-MDF', plain='plain MDF', sdf='single-dataset FT')
# raw strata.tif classes 1..7 -> lc3 classes 1..3 (0-based after offset -1)
COARSE = {1: 1, 7: 1, 2: 2, 3: 2, 4: 2, 5: 2, 6: 3}
PRIMARY = {'lc7': 'lc7/mIoU', 'lc3': 'lc3/mFscore'}
SPLIT_VERSION = 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/mdf_demo')
    p.add_argument('--data-root', default='data/landcover_nc')
    p.add_argument('--iters', type=int, default=150,
                   help='fine-tuning steps of every run')
    p.add_argument('--pretrain-iters', type=int, default=200)
    p.add_argument('--init', default=None,
                   help='start every run from this checkpoint instead of '
                   'the demo\'s own pre-training')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--methods', nargs='+', default=['moe', 'plain', 'sdf'],
                   choices=list(CONFIGS))
    p.add_argument('--src', default=None, help='folder with the scene files')
    p.add_argument('--no-fetch', action='store_true')
    p.add_argument('--overwrite', action='store_true',
                   help='re-cut the tiles of --data-root even if another '
                   'tool or the user made that folder (refused by default)')
    return p.parse_args(argv)


# ------------------------------------------------------------ data
def _column(name: str) -> int:
    m = re.match(r'.*_(-?\d+)_(-?\d+)$', name)
    if not m:
        raise ValueError(f'tile name {name!r} is not <prefix>_<x>_<y>')
    return int(m.group(1))


def write_coarse(src: Path, dst: Path) -> None:
    import numpy as np
    import rasterio
    with rasterio.open(src) as s:
        profile, raw = s.profile, s.read(1)
    out = raw.copy()
    for k, v in COARSE.items():
        out[raw == k] = v
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst, 'w', **profile) as d:
        d.write(out.astype(raw.dtype, copy=False), 1)
    assert np.isin(out[np.isin(raw, list(COARSE))], [1, 2, 3]).all()


def make_mdf_splits(data_root) -> dict:
    """Split lists under ``splits/mdf`` and the lc3 labels (module doc)."""
    data_root = Path(data_root)
    train = sorted(p.stem for p in (data_root / 'img_dir/train').glob('*.tif'))
    val = sorted(p.stem for p in (data_root / 'img_dir/val').glob('*.tif'))
    if not train or not val:
        raise FileNotFoundError(f'no tiles in {data_root}/img_dir/train or '
                                'val; tile preparation failed')
    cols = sorted({_column(n) for n in val})
    tune_cols = set(cols[0::2])
    lists = dict(pretrain=train[0::3], lc7_train=train[1::3],
                 lc3_train=train[2::3],
                 tune=[n for n in val if _column(n) in tune_cols],
                 test=[n for n in val if _column(n) not in tune_cols])
    out = data_root / 'splits' / 'mdf'
    out.mkdir(parents=True, exist_ok=True)
    for name, items in lists.items():
        (out / f'{name}.txt').write_text('\n'.join(items) + '\n')
    for split, names in (('train', train), ('val', val)):
        for n in names:
            dst = data_root / f'ann_dir/{split}_coarse/{n}.tif'
            if not dst.is_file():
                write_coarse(data_root / f'ann_dir/{split}/{n}.tif', dst)
    return {k: len(v) for k, v in lists.items()}


# ------------------------------------------------------------ runs
def _set_data_root(node, root: str) -> None:
    if isinstance(node, dict):
        if 'data_root' in node:
            node['data_root'] = root
        for v in node.values():
            _set_data_root(v, root)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _set_data_root(v, root)


def build_cfg(path, data_root, work_dir, seed, iters, load_from):
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / path))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        _set_data_root(cfg[key], str(data_root))
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    warm = max(1, min(30, iters // 10))
    cfg.param_scheduler[0].end = warm
    cfg.param_scheduler[1].begin = warm
    cfg.param_scheduler[1].end = iters
    cfg.default_hooks.logger.interval = max(1, min(100, iters))
    cfg.load_from = str(load_from) if load_from else None
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed)
    cfg.experiment_name = f'{Path(work_dir).name}_{time.time_ns()}'
    return cfg


def train_and_test(path, data_root, work_dir, seed, iters, load_from):
    from mmengine.runner import Runner
    cfg = build_cfg(path, data_root, work_dir, seed, iters, load_from)
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    runner.train()
    metrics = {k: float(v) for k, v in runner.test().items()}
    return dict(config=path, metrics=metrics, seconds=time.time() - t0,
                checkpoint=str(Path(work_dir) / f'iter_{iters}.pth'),
                dumped_config=str(Path(work_dir) / Path(path).name))


def pretrain(args, data_root, work):
    out = work / 'pretrain'
    ckpt = out / f'iter_{args.pretrain_iters}.pth'
    stamp = out / 'settings.json'
    settings = dict(iters=args.pretrain_iters, data_root=str(data_root),
                    split_version=SPLIT_VERSION)
    if ckpt.is_file() and stamp.is_file() and \
            json.loads(stamp.read_text()) == settings:
        print(f'pre-trained checkpoint reused: {ckpt}')
        return ckpt, None
    res = train_and_test(PRETRAIN_CFG, data_root, out, 0,
                         args.pretrain_iters, None)
    stamp.write_text(json.dumps(settings))
    print(f'pre-training: tune mIoU {res["metrics"].get("mIoU", "?")} '
          f'({res["seconds"]:.0f} s)', flush=True)
    return ckpt, res


def tile_confusions(run) -> dict:
    """``{dataset: (paths, (T, K, K))}`` of one run's test tiles, through
    the model's test path (its saved config and checkpoint)."""
    from mmengine.config import Config

    from s5_mm.apis.dataset_predictions import predict_dataset
    from s5_mm.evaluation.bootstrap import confusions_by_path
    cfg = Config.fromfile(run['dumped_config'])
    recs = predict_dataset(cfg, run['checkpoint'])
    out = {}
    for name in PRIMARY:
        mine = [r for r in recs if r['dataset_name'] == name]
        if mine:
            out[name] = confusions_by_path(
                mine, cfg.model.decode_head[name].num_classes)
    return out


def paired_table(results, seeds):
    """MoE-MDF minus each other method, mean over the seeds, with the
    paired tile-bootstrap interval."""
    import numpy as np

    from s5_mm.evaluation.bootstrap import mf1, miou, paired_bootstrap
    conf = {}
    for r in results:
        for run in r['runs']:
            for name, (paths, c) in tile_confusions(run).items():
                conf[(r['method'], name, r['seed'])] = (paths, c)
    lines = ['| MoE-MDF minus | dataset | metric | per seed | mean | paired '
             '95 % interval |', '|---|---|---|---|---|---|']
    out = {}
    for other in [m for m in CONFIGS if m != 'moe']:
        for name, key in PRIMARY.items():
            keys_a = [('moe', name, s) for s in seeds]
            keys_b = [(other, name, s) for s in seeds]
            if not all(k in conf for k in keys_a + keys_b):
                continue
            if any(conf[a][0] != conf[b][0] for a, b in zip(keys_a, keys_b)):
                raise RuntimeError(f'{other} {name}: other test tiles')
            metric = miou if key.endswith('mIoU') else mf1
            g = paired_bootstrap(np.stack([conf[k][1] for k in keys_a]),
                                 np.stack([conf[k][1] for k in keys_b]),
                                 metric)
            per = [float(metric(conf[a][1].sum(0)) -
                         metric(conf[b][1].sum(0)))
                   for a, b in zip(keys_a, keys_b)]
            out[f'{other}/{name}'] = dict(g, per_seed=per)
            lines.append(
                f'| {METHOD_NAMES[other]} | {name} | '
                f'{"mIoU" if metric is miou else "mF1"} | ' +
                ', '.join(f'{d:+.2f}' for d in per) +
                f' | {g["delta"]:+.2f} | [{g["low"]:+.2f}, '
                f'{g["high"]:+.2f}] |')
    return '\n'.join(lines), out


def run_method(method, seed, args, data_root, work, ckpt):
    runs = []
    for path in CONFIGS[method]:
        tag = Path(path).stem.split('landcover')[-1].lstrip('_') or method
        runs.append(train_and_test(path, data_root,
                                   work / f'{tag}_seed{seed}', seed,
                                   args.iters, ckpt))
    metrics = {}
    for r in runs:
        metrics.update(r['metrics'])
    scores = {d: metrics[k] for d, k in PRIMARY.items() if k in metrics}
    return dict(method=method, seed=seed, scores=scores,
                mean=statistics.mean(scores.values()), metrics=metrics,
                seconds=sum(r['seconds'] for r in runs), runs=runs)


def reload_check(run) -> dict:
    """tools/test.py on the saved config and checkpoint of ``run``."""
    from s5_mm.utils.tools import load_tool
    tool = load_tool('test.py')
    first = run['runs'][0]
    work = Path(first['checkpoint']).parent / 'reload_test'
    metrics = tool.main([first['dumped_config'], first['checkpoint'],
                         '--work-dir', str(work)])
    metrics = {k: float(v) for k, v in metrics.items()}
    diff = {k: (v, metrics.get(k)) for k, v in first['metrics'].items()
            if metrics.get(k) != v}
    if diff:
        raise RuntimeError(f'reloaded checkpoint scores differ: {diff}')
    return metrics


def table(results, seeds):
    head = ['method']
    for d, key in PRIMARY.items():
        metric = 'mIoU (flip)' if key.endswith('mIoU') else 'mF1'
        head += [f'{d} {metric} s{s}' for s in seeds] + [f'{d} mean +- std']
    head.append('mean of both')
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    summary = {}
    for method in CONFIGS:
        rows = [r for s in seeds for r in results
                if r['method'] == method and r['seed'] == s]
        if not rows:
            continue
        cells, summary[method] = [METHOD_NAMES[method]], {}
        for d in PRIMARY:
            vals = [r['scores'][d] for r in rows]
            mean = statistics.mean(vals)
            std = statistics.stdev(vals) if len(vals) > 1 else 0.
            summary[method][d] = dict(mean=mean, std=std, values=vals)
            cells += [f'{v:.2f}' for v in vals] + [f'{mean:.2f} +- {std:.2f}']
        both = statistics.mean(r['mean'] for r in rows)
        summary[method]['mean'] = both
        lines.append('| ' + ' | '.join(cells) + f' | {both:.2f} |')
    return '\n'.join(lines), summary


def main(argv=None):
    args = parse_args(argv)
    import s5_mm  # noqa: F401
    from s5_mm.utils.tools import load_tool
    prepare_landcover = load_tool(
        'dataset_converters/prepare_landcover.py').prepare_landcover
    data_root = Path(args.data_root).resolve()
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    prepare_landcover(data_root, src=args.src, fetch=not args.no_fetch,
                      overwrite=args.overwrite)
    split = make_mdf_splits(data_root)
    print(f'splits: {split}', flush=True)
    t0 = time.time()
    if args.init:
        from s5_mm.utils.checkpoint import check_checkpoint_file
        ckpt, pre = check_checkpoint_file(args.init), None
        print(f'every run starts from {ckpt}', flush=True)
    else:
        ckpt, pre = pretrain(args, data_root, work)
    results, reload = [], None
    for seed in args.seeds:
        for method in args.methods:
            r = run_method(method, seed, args, data_root, work, ckpt)
            print(f'{method} seed {seed}: {r["scores"]} ({r["seconds"]:.0f} '
                  's)', flush=True)
            if reload is None and method == 'moe':
                reload = reload_check(r)
                print('reloaded with tools/test.py: same scores', flush=True)
            results.append(r)
    text, summary = table(results, args.seeds)
    gains_text, gains = paired_table(results, args.seeds)
    start = (f'started from {args.init}' if args.init else
             f'pre-trained on {split["pretrain"]} other tiles '
             f'({args.pretrain_iters} steps)')
    header = (f'MDF demo, land-cover scene: {split["lc7_train"]} lc7 + '
              f'{split["lc3_train"]} lc3 training tiles, {start}; '
              f'{args.iters} fine-tuning steps of 8 tiles per '
              f'dataset; scores (%) on {split["test"]} held-out test tiles')
    print('\n' + header + '\n' + text + '\n\n' + gains_text)
    (work / 'results.md').write_text(header + '\n\n' + text + '\n\n' +
                                     gains_text + '\n')
    (work / 'results.json').write_text(json.dumps(
        dict(split=split, iters=args.iters, init=args.init,
             pretrain_iters=args.pretrain_iters, pretrain=pre,
             results=results, summary=summary, paired=gains,
             reload_metrics=reload, seconds=time.time() - t0), indent=2))
    return summary


if __name__ == '__main__':
    main()
