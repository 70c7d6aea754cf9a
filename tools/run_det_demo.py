"""Oriented detection on real DOTA images on CPU: the S5 Oriented R-CNN
learns from scratch.

    python tools/run_det_demo.py [--work-dir work_dirs/det_demo] \
        [--iters 1000] [--models plain moe] [--show-dir DIR] [--threads 1]

1. ``dota_split.py`` cuts the three shared DOTA images
   (``../shared/data/rotated/dota_mini``) into 512 x 512 patches (gap 128):
   P0003 (vehicles) and P0706 (ships, harbours) for training, P0004
   (vehicles) held out; the DIOR-R-format crops of the same images
   (``rotated/dior_format_from_dota``) get split lists the same way.
2. ``plain``: ``configs/sdf_det/vit-tiny_dota-mini.py`` (small S5 ViT,
   Oriented R-CNN, random 256 crops), trained for ``--iters`` iterations.
3. ``moe``: ``configs/mdf_det/vit-tiny-moe_dota-mini_dior-fmt.py``, the
   two-dataset MoE model (DOTA format + DIOR-R format), 2 + 2 crops a step.
4. Each model is scored by rotated mAP per class at IoU 0.5, 0.3 and 0.1
   (VOC07 11-point, difficult and patch-cut objects ignored) on its
   training patches and on the held-out ones, plus the held-out image as a
   whole (patch predictions merged with rotated NMS); pictures with the
   rotated boxes (ground truth and predictions >= 0.3) go to ``--show-dir``.
   Figures and times: ``WORK_DIR/results.json``.
"""
import argparse
import copy
import json
import os
import os.path as osp
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SHARED = REPO.parent / 'shared' / 'data' / 'rotated'
CONFIGS = dict(
    plain=REPO / 'configs' / 'sdf_det' / 'vit-tiny_dota-mini.py',
    moe=REPO / 'configs' / 'mdf_det' / 'vit-tiny-moe_dota-mini_dior-fmt.py')
TRAIN_IMAGES = ('P0003', 'P0706')
HELDOUT_IMAGES = ('P0004', )
IOUS = (0.5, 0.3, 0.1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/det_demo')
    p.add_argument('--iters', type=int, default=1000)
    p.add_argument('--models', nargs='+', choices=sorted(CONFIGS),
                   default=['plain', 'moe'])
    p.add_argument('--patch-size', type=int, default=512)
    p.add_argument('--gap', type=int, default=128)
    p.add_argument('--show-dir', default=None,
                   help='pictures of predictions (default WORK_DIR/show)')
    p.add_argument('--num-show', type=int, default=4,
                   help='pictures per evaluated set')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--resume', action='store_true',
                   help='continue from the last checkpoint (one every 100 '
                   'iterations) in WORK_DIR/<model>')
    return p.parse_args(argv)


# ------------------------------------------------------------------- data
def prepare_data(work_dir, patch, gap):
    """Split the DOTA images and write the DIOR-format split lists."""
    from s5_mm.utils.tools import load_tool
    split_dota = load_tool('dataset_converters/dota_split.py').split_dota
    work_dir = osp.abspath(work_dir)  # dataset roots differ
    root = osp.join(work_dir, 'data', f'dota_mini_{patch}')
    src = SHARED / 'dota_mini'
    counts = {}
    for split, names in (('train', TRAIN_IMAGES),
                         ('heldout', HELDOUT_IMAGES)):
        out = osp.join(root, split)
        if not osp.isdir(osp.join(out, 'labelTxt')):
            tmp = osp.join(root, f'_src_{split}')
            for kind, ext in (('images', 'png'), ('labelTxt', 'txt')):
                os.makedirs(osp.join(tmp, kind), exist_ok=True)
                for n in names:
                    dst = osp.join(tmp, kind, f'{n}.{ext}')
                    if not osp.exists(dst):
                        os.symlink(src / kind / f'{n}.{ext}', dst)
            split_dota([osp.join(tmp, 'images')], out,
                       [osp.join(tmp, 'labelTxt')], patch_size=patch,
                       gap=gap, nproc=1)
        counts[split] = len(os.listdir(osp.join(out, 'images')))
    lists = osp.join(work_dir, 'data', 'dior_fmt_lists')
    os.makedirs(lists, exist_ok=True)
    ids = (SHARED / 'dior_format_from_dota' / 'ImageSets' / 'Main' /
           'trainval.txt').read_text().split()
    for split, names in (('train', TRAIN_IMAGES),
                         ('heldout', HELDOUT_IMAGES)):
        mine = [i for i in ids if i.split('_')[0] in names]
        with open(osp.join(lists, f'{split}.txt'), 'w') as f:
            f.write('\n'.join(mine) + '\n')
        counts[f'dior_{split}'] = len(mine)
    return root + '/', lists + '/', counts


def _datasets(cfg_ds):
    """Every leaf dataset config below a (Concat) dataset config."""
    if 'datasets' in cfg_ds:
        for d in cfg_ds['datasets']:
            yield from _datasets(d)
    elif 'dataset' in cfg_ds:  # SeededDataset
        yield from _datasets(cfg_ds['dataset'])
    else:
        yield cfg_ds


def build_cfg(path, work_dir, dota_root, dior_lists, iters, seed,
              resume=False):
    from mmengine.config import Config
    from s5_mm.utils.tools import load_tool
    stretch_schedule = load_tool('run_s4p_demo.py').stretch_schedule
    cfg = Config.fromfile(str(path))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for d in _datasets(cfg[key].dataset):
            if 'DOTA' in d.type:
                d.data_root = dota_root
            else:  # the DIOR-format crops: lists written by prepare_data
                d.ann_file = osp.join(dior_lists,
                                      osp.basename(d.ann_file))
                d.data_root = str(SHARED / 'dior_format_from_dota')
    stretch_schedule(cfg, iters)
    # a checkpoint every 100 iterations: a killed run can --resume
    cfg.default_hooks.checkpoint.update(interval=min(100, iters),
                                        max_keep_ckpts=1)
    cfg.resume = resume
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed)
    cfg.default_hooks.visualization = dict(type='mmdet.DetVisualizationHook')
    # scored after training by score(), on training and held-out patches
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


# ---------------------------------------------------------------- scoring
def eval_sets(cfg):
    """``{name: (dataset cfg, dataset name)}``: training and held-out
    patches of each dataset of the model, with the test pipeline."""
    sets = {}
    for d in _datasets(cfg.test_dataloader.dataset):
        name = d.get('dataset_name', 'dota')
        held = copy.deepcopy(d)
        train = copy.deepcopy(held)
        if 'DOTA' in d.type:
            train.ann_file = 'train/labelTxt/'
            train.data_prefix = dict(img_path='train/images/')
        else:
            train.ann_file = osp.join(osp.dirname(d.ann_file), 'train.txt')
        sets[f'{name}/train'] = (train, name)
        sets[f'{name}/heldout'] = (held, name)
    return sets


def score(model, ds_cfg, dataset_name, show_dir, num_show):
    """Rotated mAP of ``model`` on one dataset; returns (metrics, patch
    results for merging, number of predictions >= 0.3)."""
    import torch
    from mmengine.registry import DATASETS, VISUALIZERS
    from mmengine.runner import Runner
    from s5_mm.evaluation.metrics import RotatedVOCMetric

    dataset = DATASETS.build(ds_cfg)
    loader = Runner.build_dataloader(dict(
        batch_size=1, num_workers=0, dataset=dataset,
        sampler=dict(type='DefaultSampler', shuffle=False)))
    metric = RotatedVOCMetric(iou_thrs=list(IOUS))
    metric.dataset_meta = dataset.metainfo
    vis = None
    if show_dir:
        os.makedirs(show_dir, exist_ok=True)
        vis = VISUALIZERS.build(dict(type='RotLocalVisualizer',
                                     name=f'demo_{time.time_ns()}',
                                     line_width=1))
        vis.dataset_meta = dataset.metainfo
    n_pred = 0
    # pictures of patches spread over the set (both images of a split)
    step = max(1, len(dataset) // max(num_show, 1))
    show = set(range(0, len(dataset), step)[:num_show])
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(loader):
            outs = model.test_step(batch)
            for s in outs:
                n_pred += int((s.pred_instances.scores >= 0.3).sum())
                if vis is not None and i in show:
                    import mmcv
                    img = mmcv.imread(s.img_path, channel_order='rgb')
                    vis.add_datasample(
                        s.img_id, img, s, draw_gt=True, pred_score_thr=0.3,
                        out_file=osp.join(show_dir, f'{s.img_id}.jpg'))
            metric.process(batch, [s.to_dict() for s in outs])
    results = list(metric.results)
    return metric.compute_metrics(metric.results), results, n_pred


def score_merged(results, classes, label_dir, names):
    """mAP of the held-out images as a whole: patch predictions merged
    (rotated NMS 0.1), against the image's own labels (difficult ignored)."""
    import numpy as np
    import torch
    from mmrotate.structures.bbox import qbox2rbox
    from s5_mm.datasets.dota import merge_patch_dets, parse_dota_txt
    from s5_mm.evaluation.metrics.rotated_voc_metric import rotated_ap
    merged = merge_patch_dets(results, len(classes))
    gts, ign = {}, {}
    for n in names:
        objs, _ = parse_dota_txt(osp.join(label_dir, f'{n}.txt'), classes)
        boxes = qbox2rbox(torch.tensor([o['poly'] for o in objs])
                          .reshape(-1, 8)).numpy()
        lab = np.array([classes.index(o['name']) for o in objs])
        diff = np.array([o['difficulty'] > 0 for o in objs], bool)
        gts[n] = [boxes[(lab == c) & ~diff] for c in range(len(classes))]
        ign[n] = [boxes[(lab == c) & diff] for c in range(len(classes))]
    out = {}
    for thr in IOUS:
        aps = {}
        for c, cls in enumerate(classes):
            r = rotated_ap(
                [merged.get(n, [np.zeros((0, 6))] * len(classes))[c]
                 for n in names], [gts[n][c] for n in names],
                [ign[n][c] for n in names], thr)
            if r['num_gts']:
                aps[cls] = round(r['ap'], 4)
        out[f'AP{round(thr * 100):02d}'] = round(
            float(np.mean(list(aps.values()))), 4)
        out.update({f'AP{round(thr * 100):02d}_{k}': v
                    for k, v in aps.items()})
    return out


# ------------------------------------------------------------------- main
def run_model(kind, args, dota_root, dior_lists):
    from mmengine.runner import Runner
    work_dir = osp.join(args.work_dir, kind)
    cfg = build_cfg(CONFIGS[kind], work_dir, dota_root, dior_lists,
                    args.iters, args.seed, args.resume)
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    runner.train()
    train_s = time.time() - t0
    # mean step time of the iterations this process ran (IterTimerHook)
    step_s = float(runner.message_hub.get_scalar('train/time').mean())
    model = runner.model
    show_root = args.show_dir or osp.join(args.work_dir, 'show')
    out = dict(config=str(CONFIGS[kind].relative_to(REPO)), iters=args.iters,
               train_seconds=round(train_s, 1),
               seconds_per_iter=round(step_s, 3),
               parameters_m=round(sum(p.numel() for p in model.parameters())
                                  / 1e6, 3), sets={})
    for name, (ds_cfg, ds_name) in eval_sets(cfg).items():
        t0 = time.time()
        metrics, results, n_pred = score(
            model, ds_cfg, ds_name,
            osp.join(show_root, kind, name.replace('/', '_')), args.num_show)
        entry = dict(metrics=metrics, predictions_ge_0_3=n_pred,
                     eval_seconds=round(time.time() - t0, 1))
        if name == 'dota/heldout':
            classes = list(Runner.build_dataloader(dict(
                batch_size=1, num_workers=0, dataset=ds_cfg,
                sampler=dict(type='DefaultSampler', shuffle=False)))
                .dataset.metainfo['classes'])
            entry['merged_full_image'] = score_merged(
                results, classes, str(SHARED / 'dota_mini' / 'labelTxt'),
                HELDOUT_IMAGES)
        out['sets'][name] = entry
        print(f'[{kind}] {name}: ' + ', '.join(
            f'{k} {v:.3f}' for k, v in metrics.items()
            if k in ('AP50', 'AP30', 'AP10')) + f'; {n_pred} boxes >= 0.3')
    return out


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    import s5_mm  # noqa: F401
    from mmrotate.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    t0 = time.time()
    dota_root, dior_lists, counts = prepare_data(args.work_dir,
                                                 args.patch_size, args.gap)
    path = osp.join(args.work_dir, 'results.json')
    report = dict(models={})
    if osp.isfile(path):  # keep the figures of models run before
        with open(path) as f:
            report = json.load(f)
    report.update(data=counts, threads=args.threads)
    for kind in args.models:
        report['models'][kind] = run_model(kind, args, dota_root, dior_lists)
        with open(path, 'w') as f:
            json.dump(report, f, indent=1)
    report['last_run_seconds'] = round(time.time() - t0, 1)
    with open(path, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'results: {path}')
    return report


if __name__ == '__main__':  # DOTAMetric-style process pools need the guard
    main()
