"""The S5 pipeline on the Landsat-7 land-cover scene, in one command.

    python tools/run_s5_pipeline.py [--work-dir work_dirs/s5_pipeline]
        [--data-root data/landcover_nc] [--from STAGE] [--seed 0]
        [--scoring-iters N] [--s4p-iters N] [--mdf-iters N]
        [--tensorboard] [--src DIR] [--no-fetch]

Stages (each a config of configs/demo or configs/selection, run with the
same runner set-up as tools/train.py / tools/test.py):

1. ``scoring``: the supervised-only model on the 10 labelled tiles of the
   S4P demo split (configs/demo/s4p-supervised_vit-tiny_landcover.py); it
   is also the supervised baseline of the table.
2. ``selection``: it scores the 89 unlabelled tiles and keeps half of them by
   entropy + diversity (tools/select_data.py with
   configs/selection/entropy-diversity_vit-tiny_landcover.py).
3. ``s4p``: S4P on the labelled tiles + the selected ones
   (configs/demo/s4p_vit-tiny_landcover.py). The paper initialises S4P from
   MAE weights (S5_METHOD.md); no MAE model exists for this 6-band tiny
   ViT, so student and EMA teacher start from the scoring model, the only
   pre-trained weights here (trained on the same labelled tiles; no other
   labels enter). ``--s4p-init scratch`` starts from random weights, as
   tools/run_s4p_demo.py does (that needs about 1000 steps).
4. ``mdf``: MoE-MDF fine-tuning from the S4P checkpoint (student) on two
   datasets with different class lists, lc7 (7 classes) and lc3
   (non-vegetation / vegetation / water), on disjoint training tiles
   (configs/demo/mdf_vit-tiny_landcover.py, splits of tools/run_mdf_demo.py).
5. ``evaluation``: every model on the same held-out test tiles, prediction
   and pseudo-label pictures, and a georeferenced class map of the whole
   scene (s5_mm.apis.infer_scene, MoE-MDF lc7 head).

Then ``report.md`` and ``index.html`` (opens from file://) are written in
the work dir from ``metrics.json``. A stage whose outputs exist (its
``stage.json``, with the same settings) is skipped on a re-run; ``--from
STAGE`` reruns that stage and every later one. A stage that runs makes the
later ones run too.
"""
import argparse
import html
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUP_CFG = REPO / 'configs/demo/s4p-supervised_vit-tiny_landcover.py'
S4P_CFG = REPO / 'configs/demo/s4p_vit-tiny_landcover.py'
SEL_CFG = REPO / 'configs/selection/entropy-diversity_vit-tiny_landcover.py'
MDF_CFG = 'configs/demo/mdf_vit-tiny_landcover.py'
STAGES = ('scoring', 'selection', 's4p', 'mdf', 'evaluation')
LC3_CLASSES = ('non-vegetation', 'vegetation', 'water')
LC3_PALETTE = [[170, 170, 170], [60, 180, 75], [0, 130, 200]]
# held-out picture columns: result key -> heading
COLUMNS = {'image': 'false colour (NIR, red, green)', 'labels': 'labels lc7',
           'supervised': 'supervised', 's4p': 'S4P', 'moe_lc7': 'MoE-MDF lc7',
           'labels_lc3': 'labels lc3', 'moe_lc3': 'MoE-MDF lc3'}
PICTURE_SIZE = 192  # a 32 px tile is drawn 6x, nearest neighbour
# paired gains on the test tiles: key -> (model A, baseline B, metric, text)
COMPARISONS = {
    's4p_vs_supervised': ('s4p', 'supervised', 'mIoU',
                          'S4P - supervised (7 classes)'),
    'moe_lc7_vs_s4p': ('moe_lc7', 's4p', 'mIoU',
                       'MoE-MDF lc7 - S4P (7 classes)'),
    'moe_lc3_vs_s4p_merged': ('moe_lc3', 's4p_merged', 'mF1',
                              'MoE-MDF lc3 - S4P merged to lc3'),
    'moe_lc3_vs_supervised_merged': ('moe_lc3', 'supervised_merged', 'mF1',
                                     'MoE-MDF lc3 - supervised merged to '
                                     'lc3'),
}


def _tool(name):
    from s5_mm.utils.tools import load_tool
    return load_tool(name)


def parse_args(argv=None):
    from s5_mm.utils.cli import positive_int
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/s5_pipeline')
    p.add_argument('--data-root', default='data/landcover_nc')
    p.add_argument('--from', dest='from_stage', choices=STAGES,
                   help='rerun this stage and the later ones')
    p.add_argument('--seed', type=int, default=0,
                   help='one seed (the same as --seeds SEED)')
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='several seeds: one pipeline each in '
                   'WORK_DIR/seed_<s>, then a report over the seeds in '
                   'WORK_DIR (each seed, mean, spread, paired intervals)')
    p.add_argument('--scoring-iters', type=positive_int, default=300,
                   help='supervised scoring model / baseline steps')
    p.add_argument('--s4p-iters', type=positive_int, default=400)
    p.add_argument('--mdf-iters', type=positive_int, default=150)
    p.add_argument('--clusters', type=positive_int, default=4)
    p.add_argument('--pictures', type=positive_int, default=4,
                   help='held-out and unlabelled tiles drawn in the report')
    p.add_argument('--tensorboard', action='store_true',
                   help='TensorBoard events for every training run')
    p.add_argument('--s4p-init', choices=['scoring', 'scratch'],
                   default='scoring',
                   help='S4P start: the scoring model\'s weights (student '
                   'and teacher; stands in for the paper\'s MAE weights) '
                   'or random')
    p.add_argument('--s4p-options', nargs='*', default=[],
                   help='key=value overrides of the S4P config')
    p.add_argument('--src', default=None, help='folder with the scene files')
    p.add_argument('--no-fetch', action='store_true')
    p.add_argument('--overwrite', action='store_true',
                   help='replace stage folders of the work dir and the '
                   'tiles of --data-root even if this tool did not create '
                   'them (refused by default)')
    return p.parse_args(argv)


# ------------------------------------------------------------ helpers
class Pipeline:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work_dir).resolve()
        self.data_root = Path(args.data_root).resolve()
        self.s4p_demo = _tool('run_s4p_demo.py')
        self.mdf_demo = _tool('run_mdf_demo.py')
        self.t_start = time.time()
        self.ran = []

    def settings(self, stage):
        """What decides a stage's outputs (its own and the earlier ones')."""
        a = self.args
        per = dict(scoring=dict(iters=a.scoring_iters, seed=a.seed,
                                data_root=str(self.data_root)),
                   selection=dict(clusters=a.clusters),
                   s4p=dict(iters=a.s4p_iters, options=a.s4p_options,
                            init=a.s4p_init),
                   # version: bumped when a stage's code or config changes
                   # what it computes (issue 20: classifier start, recipe,
                   # paired intervals)
                   mdf=dict(iters=a.mdf_iters, version=3),
                   evaluation=dict(pictures=a.pictures, version=2))
        out = {}
        for s in STAGES[:STAGES.index(stage) + 1]:
            out[s] = per[s]
        return out

    def stage_file(self, stage):
        return self.work / stage / 'stage.json'

    def load_stage(self, stage):
        f = self.stage_file(stage)
        return json.loads(f.read_text())['result'] if f.is_file() else None

    def must_run(self, stage):
        a = self.args
        if self.ran:  # an earlier stage changed its inputs
            return 'an earlier stage ran'
        if a.from_stage and STAGES.index(stage) >= STAGES.index(a.from_stage):
            return f'--from {a.from_stage}'
        f = self.stage_file(stage)
        if not f.is_file():
            return 'no outputs yet'
        if json.loads(f.read_text()).get('settings') != json.loads(
                json.dumps(self.settings(stage))):
            return 'settings changed'
        return None

    def run_stage(self, k, stage, fn):
        head = f'[{k}/{len(STAGES)}] {stage}'
        why = self.must_run(stage)
        if why is None:
            res = self.load_stage(stage)
            print(f'{head}: skipped, outputs exist ({self.work / stage}); '
                  f'{res["line"]}', flush=True)
            return res
        print(f'{head}: running ({why}) ...', flush=True)
        out = self.work / stage
        from s5_mm.utils.owned_dirs import replace_parts
        # a stage folder of an earlier run (stage.json) is ours to replace
        replace_parts(out, 'run_s5_pipeline', overwrite=self.args.overwrite,
                      legacy_owned=self.stage_file(stage).is_file())
        t0 = time.time()
        res = fn(out)
        res['seconds'] = time.time() - t0
        res['line'] = f'{res["line"]} ({res["seconds"]:.0f} s)'
        tmp = self.stage_file(stage).with_suffix('.tmp')
        tmp.write_text(json.dumps(dict(settings=self.settings(stage),
                                       result=res), indent=2))
        os.replace(tmp, self.stage_file(stage))
        self.ran.append(stage)
        print(f'{head}: {res["line"]}', flush=True)
        return res

    def finish_cfg(self, cfg, desc):
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='TrainProgressHook', desc=desc)]
        if self.args.tensorboard:
            from s5_mm.utils.tensorboard import enable_tensorboard
            enable_tensorboard(cfg)
        return cfg

    def train_test(self, cfg):
        from s5_mm.utils import build_runner, prepare_scope
        prepare_scope(cfg)
        runner = build_runner(cfg)
        runner.train()
        metrics = {k: float(v) for k, v in runner.test().items()}
        cfg_path = Path(cfg.work_dir) / 'config.py'
        cfg.dump(str(cfg_path))
        ckpt = Path(cfg.work_dir) / f'iter_{cfg.train_cfg.max_iters}.pth'
        if not ckpt.is_file():
            raise FileNotFoundError(f'training ended without {ckpt}')
        return runner, metrics, str(cfg_path), str(ckpt)

    # -------------------------------------------------------- stages
    def prepare(self):
        prepare = _tool('dataset_converters/prepare_landcover.py')
        a = self.args
        prepare.prepare_landcover(self.data_root, src=a.src,
                                  fetch=not a.no_fetch,
                                  overwrite=a.overwrite)
        self.scene_src = prepare.find_landcover_source(a.src,
                                                       fetch=not a.no_fetch)
        self.split = self.s4p_demo.make_splits(self.data_root, 'tiles', 10,
                                               0.01)
        self.mdf_split = self.mdf_demo.make_mdf_splits(self.data_root)

    def scoring(self, out):
        cfg = self.s4p_demo.build_cfg(SUP_CFG, self.data_root, self.split,
                                      out, self.args.seed,
                                      self.args.scoring_iters, {})
        self.finish_cfg(cfg, 'scoring model')
        _, m, cfg_path, ckpt = self.train_test(cfg)
        n = self.split['labelled_tiles']
        return dict(config=cfg_path, checkpoint=ckpt, metrics=m,
                    mIoU=m['mIoU'], labelled_tiles=n,
                    line=f'supervised on {n} labelled tiles: held-out '
                    f'mIoU {m["mIoU"]:.2f}')

    def selection(self, out, scoring):
        select = _tool('select_data.py')
        pool = self.data_root / self.split['unlabelled_list']
        n = len(pool.read_text().split())
        img = str(self.data_root / 'img_dir/train')
        rc = select.main([
            str(SEL_CFG), scoring['checkpoint'], '--pool', str(pool),
            '--labeled', str(self.data_root / self.split['labelled_list']),
            '--pool-root', img, '--labeled-root', img, '--list-suffix',
            '.tif', '--budget', str(n // 2), '--out', str(out),
            '--clusters', str(self.args.clusters), '--redistribute'])
        if rc:
            raise RuntimeError(f'tools/select_data.py failed (exit {rc})')
        s = json.loads((out / 'summary.json').read_text())
        ent = s['entropy']
        return dict(selected_list=str(out / 'selected.txt'),
                    summary_png=str(out / 'summary.png'),
                    selected=s['selected'], pool=n, budget=n // 2,
                    no_valid_pixels=s['no_valid_pixels'],
                    shortfall=s['shortfall'],
                    entropy_selected=ent['selected']['median'],
                    entropy_rejected=ent['rejected']['median'],
                    line=f'{s["selected"]} of {n} unlabelled tiles selected '
                    f'(median entropy {ent["selected"]["median"]:.3f} vs '
                    f'{ent["rejected"]["median"]:.3f} rejected; '
                    f'{s["no_valid_pixels"]} tiles without a valid pixel)')

    def s4p(self, out, scoring, selection):
        split = dict(self.split, unlabelled_list=selection['selected_list'])
        options = self.s4p_demo.parse_options(self.args.s4p_options)
        cfg = self.s4p_demo.build_cfg(S4P_CFG, self.data_root, split, out,
                                      self.args.seed, self.args.s4p_iters,
                                      options)
        if self.args.s4p_init == 'scoring':
            cfg.load_from = s4p_init_checkpoint(scoring['checkpoint'],
                                                out / 'init_from_scoring.pth')
        self.finish_cfg(cfg, 'S4P')
        runner, m, cfg_path, ckpt = self.train_test(cfg)
        shares = None
        for hook in runner.hooks:
            if type(hook).__name__ == 'S4PStatsHook':
                shares = hook.last_shares
        return dict(config=cfg_path, checkpoint=ckpt, metrics=m,
                    mIoU=m['student/mIoU'], mIoU_teacher=m['teacher/mIoU'],
                    pseudo_label_shares=shares,
                    unlabelled=selection['selected'],
                    line=f'S4P on {self.split["labelled_tiles"]} labelled + '
                    f'{selection["selected"]} selected tiles: held-out mIoU '
                    f'{m["student/mIoU"]:.2f} (student), '
                    f'{m["teacher/mIoU"]:.2f} (EMA teacher)')

    def mdf(self, out, s4p):
        cfg = self.mdf_demo.build_cfg(MDF_CFG, self.data_root, out,
                                      self.args.seed, self.args.mdf_iters,
                                      s4p['checkpoint'])
        # lc3 mIoU as well (the config reports its mF1)
        cfg.test_evaluator = json.loads(json.dumps(cfg.test_evaluator))
        cfg.test_evaluator['dataset_metrics']['lc3']['iou_metrics'] = [
            'mIoU', 'mFscore']
        self.finish_cfg(cfg, 'MoE-MDF')
        _, m, cfg_path, ckpt = self.train_test(cfg)
        sp = self.mdf_split
        return dict(config=cfg_path, checkpoint=ckpt, metrics=m,
                    lc7_mIoU=m['lc7/mIoU'], lc3_mIoU=m['lc3/mIoU'],
                    lc3_mF1=m['lc3/mFscore'], split=sp,
                    line=f'MoE-MDF from S4P on {sp["lc7_train"]} lc7 + '
                    f'{sp["lc3_train"]} lc3 tiles: test lc7 mIoU '
                    f'{m["lc7/mIoU"]:.2f} (flip), lc3 mIoU '
                    f'{m["lc3/mIoU"]:.2f}, mF1 {m["lc3/mFscore"]:.2f}')

    def evaluation(self, out, scoring, selection, s4p, mdf):
        test = _tool('test.py')
        common = {}
        # the 7-class models on the MoE-MDF test tiles too (same tiles)
        for name, st in (('scoring', scoring), ('s4p', s4p)):
            m = test.main([
                st['config'], st['checkpoint'], '--work-dir',
                str(out / f'test_{name}'), '--cfg-options',
                f'test_dataloader.dataset.data_root={self.data_root}',
                'test_dataloader.dataset.ann_file=splits/mdf/test.txt'])
            m = {k: float(v) for k, v in m.items()}
            common[name] = m.get('student/mIoU', m.get('mIoU'))
        paired = self.paired_gains(out, scoring, s4p, mdf)
        pics = draw_pictures(self, out, scoring, selection, s4p, mdf)
        scene = scene_map(self, out / 'scene', mdf)
        return dict(test_mIoU=common, pictures=pics, scene=scene,
                    paired=paired,
                    line=f'test tiles: supervised {common["scoring"]:.2f}, '
                    f'S4P {common["s4p"]:.2f}, MoE-MDF lc7 '
                    f'{mdf["lc7_mIoU"]:.2f} mIoU; scene map '
                    f'{Path(scene["classes"]).name}')

    def paired_gains(self, out, scoring, s4p, mdf):
        """Every model on the test tiles through its own test path, the
        per-tile confusion matrices (``tile_confusions.npz``) and the paired
        bootstrap interval of each gain in COMPARISONS."""
        import numpy as np
        from mmengine.config import Config

        from s5_mm.apis.dataset_predictions import predict_dataset
        from s5_mm.evaluation.bootstrap import (METRICS, confusions_by_path,
                                                paired_bootstrap)
        from s5_mm.models.utils.classifier_init import merge_lut
        recs = {}
        for name, st in (('supervised', scoring), ('s4p', s4p)):
            cfg = Config.fromfile(st['config'])
            cfg.test_dataloader.dataset.data_root = str(self.data_root)
            cfg.test_dataloader.dataset.ann_file = 'splits/mdf/test.txt'
            recs[name] = predict_dataset(cfg, st['checkpoint'])
        mdf_cfg = Config.fromfile(mdf['config'])
        moe = predict_dataset(mdf_cfg, mdf['checkpoint'])
        for ds in ('lc7', 'lc3'):
            recs[f'moe_{ds}'] = [r for r in moe if r['dataset_name'] == ds]
        conf = {}
        paths, conf['supervised'] = confusions_by_path(recs['supervised'], 7)
        for name, k in (('s4p', 7), ('moe_lc7', 7), ('moe_lc3', 3)):
            got, conf[name] = confusions_by_path(recs[name], k)
            if got != paths:
                raise RuntimeError(f'{name} was tested on other tiles')
        # the 7-class models' predictions merged to lc3 (the class map of
        # the MDF config), against the lc3 labels of the same tiles
        lut = merge_lut(mdf_cfg.model.classifier_init, 'lc3')
        lc3_labels = {str(r['img_path']): r['label']
                      for r in recs['moe_lc3']}
        for name in ('supervised', 's4p'):
            _, conf[f'{name}_merged'] = confusions_by_path(
                recs[name], 3, lut, lc3_labels)
        np.savez_compressed(out / 'tile_confusions.npz',
                            paths=np.array(paths), **conf)
        return dict(
            tiles=len(paths), confusions=str(out / 'tile_confusions.npz'),
            gains={key: paired_bootstrap(conf[a], conf[b], METRICS[metric])
                   for key, (a, b, metric, _) in COMPARISONS.items()},
            scores={name: float(METRICS['mIoU' if c.shape[1] == 7 else
                                        'mF1'](c.sum(0)))
                    for name, c in conf.items()})

    def run(self):
        self.prepare()
        res = {}
        res['scoring'] = self.run_stage(1, 'scoring', self.scoring)
        res['selection'] = self.run_stage(
            2, 'selection', lambda o: self.selection(o, res['scoring']))
        res['s4p'] = self.run_stage(
            3, 's4p', lambda o: self.s4p(o, res['scoring'],
                                         res['selection']))
        res['mdf'] = self.run_stage(4, 'mdf',
                                    lambda o: self.mdf(o, res['s4p']))
        res['evaluation'] = self.run_stage(
            5, 'evaluation', lambda o: self.evaluation(
                o, res['scoring'], res['selection'], res['s4p'],
                res['mdf']))
        report = write_report(self, res)
        print(f'report: {report["md"]} and {report["html"]} '
              f'({time.time() - self.t_start:.0f} s in all; ran: '
              f'{", ".join(self.ran) or "nothing"})', flush=True)
        return dict(stages=res, report=report, ran=self.ran)


def s4p_init_checkpoint(src, dst):
    """A plain segmentor checkpoint as S4PSegmentor weights: the same
    weights for the student and the EMA teacher."""
    import torch

    from s5_mm.utils.checkpoint import read_checkpoint, state_dict_of
    state = state_dict_of(read_checkpoint(src, 'cpu'))
    if any(k.startswith(('student.', 'teacher.')) for k in state):
        raise ValueError(f'{src} is already an S4P checkpoint')
    out = {f'{who}.{k}': v for who in ('student', 'teacher')
           for k, v in state.items()}
    torch.save(dict(state_dict=out, meta=dict(init_from=str(src))), dst)
    return str(dst)


# ------------------------------------------------------------ pictures
def _build(cfg_path, ckpt):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from s5_mm.utils.checkpoint import load_checked
    cfg = Config.fromfile(cfg_path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    load_checked(model, ckpt)
    return model.eval()


def _predict(model, bands, dataset_name=None):
    import torch

    from s5_mm.apis.inference import window_logits
    with torch.no_grad():
        logits = window_logits(model, bands[None], dataset_name)[0]
    return logits


def _softmax(logits):
    import numpy as np
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _pick_tiles(paths, k, label_dir=None):
    """The ``k`` tiles with the most valid pixels (then most classes)."""
    import numpy as np

    from s5_mm.visualization.report import read_labels, read_tile
    scored = []
    for p in paths:
        _, inv = read_tile(p)
        n_cls = 0
        if label_dir is not None:
            lab = read_labels(Path(label_dir) / Path(p).name, -1, 7)
            n_cls = len(np.unique(lab[(lab != 255) & ~inv]))
        scored.append((-int((~inv).sum()), -n_cls, str(p)))
    return [p for _, _, p in sorted(scored)[:k]]


def draw_pictures(pipe, out, scoring, selection, s4p, mdf):
    """Held-out tiles (image, labels, every model) and unlabelled selected
    tiles (image, teacher prediction, confidence mask) as PNGs."""
    import numpy as np
    import torch

    from s5_mm.datasets.landcover import LANDCOVER_PALETTE
    from s5_mm.visualization.report import (colorize, false_colour,
                                            mask_picture, read_labels,
                                            read_tile, save_png, upscale)
    root = pipe.data_root
    k = pipe.args.pictures
    sup = _build(scoring['config'], scoring['checkpoint'])
    semi = _build(s4p['config'], s4p['checkpoint'])
    moe = _build(mdf['config'], mdf['checkpoint'])
    coarse = pipe.mdf_demo.COARSE
    lut3 = np.full(256, 255, np.int64)
    for raw, c in coarse.items():
        lut3[raw - 1] = c - 1

    def png(rgb, name):
        return save_png(upscale(rgb, PICTURE_SIZE), out / 'pictures' / name)

    test_names = (root / 'splits/mdf/test.txt').read_text().split()
    heldout = []
    for p in _pick_tiles([root / 'img_dir/val' / f'{n}.tif'
                          for n in test_names], k, root / 'ann_dir/val'):
        stem = Path(p).stem
        bands, inv = read_tile(p)
        gt = read_labels(root / 'ann_dir/val' / f'{stem}.tif', -1, 7)
        gt3 = np.where(gt == 255, 255, lut3[np.minimum(gt, 255)])
        preds = dict(
            supervised=_predict(sup, bands).argmax(0),
            s4p=_predict(semi.student, bands).argmax(0),
            moe_lc7=_predict(moe, bands, 'lc7').argmax(0),
            moe_lc3=_predict(moe, bands, 'lc3').argmax(0))
        row = dict(tile=stem, image=png(false_colour(bands, inv),
                                        f'heldout_{stem}_image.png'),
                   labels=png(colorize(gt, LANDCOVER_PALETTE, inv),
                              f'heldout_{stem}_labels.png'),
                   labels_lc3=png(colorize(gt3, LC3_PALETTE, inv),
                                  f'heldout_{stem}_labels_lc3.png'))
        for name, pred in preds.items():
            pal = LC3_PALETTE if name == 'moe_lc3' else LANDCOVER_PALETTE
            row[name] = png(colorize(pred, pal, inv),
                            f'heldout_{stem}_{name}.png')
        heldout.append(row)

    sel = [ln.split()[0] for ln in Path(selection['selected_list'])
           .read_text().splitlines() if ln and not ln.startswith('#')]
    pseudo = []
    img_dir = root / 'img_dir/train'
    for p in _pick_tiles([img_dir / n for n in sel], k):
        stem = Path(p).stem
        bands, inv = read_tile(p)
        prob = _softmax(_predict(semi.teacher, bands))
        conf = torch.from_numpy(prob.max(0))[None]
        lab = torch.from_numpy(prob.argmax(0))[None]
        pad = torch.from_numpy(inv)[None]
        # the thresholds S4P training applies (tau, per-class keep ratio),
        # here over this one tile
        thr = semi.pixel_thresholds(conf, lab, pad)
        keep = ((conf >= thr) & ~pad)[0].numpy()
        pseudo.append(dict(
            tile=stem, image=png(false_colour(bands, inv),
                                 f'pseudo_{stem}_image.png'),
            teacher=png(colorize(lab[0].numpy(), LANDCOVER_PALETTE, inv),
                        f'pseudo_{stem}_teacher.png'),
            mask=png(mask_picture(keep, inv), f'pseudo_{stem}_mask.png'),
            kept_share=float(keep.sum() / max(1, (~inv).sum()))))
    return dict(heldout=heldout, pseudo=pseudo)


def scene_map(pipe, out, mdf):
    """Class map of the whole scene by the MoE-MDF lc7 head (GeoTIFF,
    georeferenced as the bands), its quick-look and a legend version."""
    from s5_mm.apis.inference import infer_scene
    from s5_mm.datasets.landcover import (LANDCOVER_BANDS, LANDCOVER_CLASSES,
                                          LANDCOVER_PALETTE)
    from s5_mm.visualization.report import with_legend
    model = _build(mdf['config'], mdf['checkpoint'])
    bands = [str(pipe.scene_src / b) for b in LANDCOVER_BANDS]
    res = infer_scene(model, bands, out / 'landcover_pred.tif', tile_size=32,
                      stride=16, batch_size=32, dataset_name='lc7',
                      write_confidence=True,
                      quicklook_png=out / 'landcover_pred.png',
                      palette=LANDCOVER_PALETTE, progress=True)
    legend = with_legend(res['quicklook'], LANDCOVER_CLASSES,
                         LANDCOVER_PALETTE, out / 'landcover_pred_legend.png',
                         min_width=978, title='MoE-MDF lc7 head')
    return dict(classes=str(res['classes']),
                confidence=str(res['confidence']),
                quicklook=str(res['quicklook']), legend=legend,
                windows=res['num_windows'])


# ------------------------------------------------------------ report
def table_rows(res):
    """(stage, model, metric, all held-out tiles, test tiles) per row;
    the numbers straight from the stages' results."""
    sc, s4, md, ev = (res['scoring'], res['s4p'], res['mdf'],
                      res['evaluation'])
    return [
        ('1 scoring', 'supervised-only baseline (labelled tiles)', 'mIoU',
         sc['mIoU'], ev['test_mIoU']['scoring']),
        ('3 S4P', 'S4P student (labelled + selected tiles)', 'mIoU',
         s4['mIoU'], ev['test_mIoU']['s4p']),
        ('4 MoE-MDF', 'lc7 head (7 classes, flip)', 'mIoU', None,
         md['lc7_mIoU']),
        ('4 MoE-MDF', 'lc3 head (3 classes)', 'mIoU', None, md['lc3_mIoU']),
        ('4 MoE-MDF', 'lc3 head (3 classes)', 'mF1', None, md['lc3_mF1']),
        ('baseline', 'S4P predictions merged to lc3', 'mF1', None,
         ev['paired']['scores']['s4p_merged']),
        ('baseline', 'supervised predictions merged to lc3', 'mF1', None,
         ev['paired']['scores']['supervised_merged']),
    ]


def gain_rows(paired):
    """(comparison, metric, A, B, A - B, interval) per COMPARISONS key."""
    rows = []
    for key, (_, _, metric, text) in COMPARISONS.items():
        g = paired['gains'][key]
        rows.append((text, metric, g['a'], g['b'], g['delta'],
                     f'[{g["low"]:+.2f}, {g["high"]:+.2f}]'))
    return rows


def _hex(c):
    return '#%02x%02x%02x' % tuple(int(x) for x in c)


def _legend_html(name, classes, palette):
    items = ''.join(
        f'<span class="sw" style="background:{_hex(c)}"></span>'
        f'{html.escape(n)} ' for n, c in zip(classes, palette))
    return (f'<p>{name}: {items}<span class="sw" style="background:#000">'
            '</span>nodata</p>')


def _fmt(v):
    return '-' if v is None else f'{v:.2f}'


def write_report(pipe, res):
    from s5_mm.datasets.landcover import LANDCOVER_CLASSES, LANDCOVER_PALETTE
    work = pipe.work
    rows = table_rows(res)
    sc, sl, s4, md, ev = (res[s] for s in STAGES)
    n_val = len(list((pipe.data_root / 'img_dir/val').glob('*.tif')))
    n_test = md['split']['test']
    gain = s4['mIoU'] - sc['mIoU']
    verdict = (f'S4P beats the supervised baseline on the held-out tiles by '
               f'{gain:.2f} mIoU points (seed {pipe.args.seed}).' if gain > 0
               else f'S4P does NOT beat the supervised baseline on the '
               f'held-out tiles here ({gain:+.2f} mIoU points, seed '
               f'{pipe.args.seed}).')
    gains = ev['paired']['gains']
    for key, what in (('moe_lc7_vs_s4p', 'MoE-MDF lc7 against the S4P '
                       'model it starts from'),
                      ('moe_lc3_vs_s4p_merged', 'MoE-MDF lc3 against S4P\'s '
                       'predictions merged to lc3')):
        g = gains[key]
        verdict += (f' {what}: {g["delta"]:+.2f} points on the '
                    f'{g["tiles"]} test tiles (paired 95 % interval '
                    f'[{g["low"]:+.2f}, {g["high"]:+.2f}]).')
    metrics = dict(
        seed=pipe.args.seed,
        iters=dict(scoring=pipe.args.scoring_iters, s4p=pipe.args.s4p_iters,
                   mdf=pipe.args.mdf_iters),
        table=[dict(stage=r[0], model=r[1], metric=r[2], heldout=r[3],
                    test=r[4]) for r in rows],
        seconds={s: res[s]['seconds'] for s in STAGES},
        stages={s: res[s]['metrics'] for s in ('scoring', 's4p', 'mdf')},
        selection={k: sl[k] for k in ('selected', 'pool', 'budget',
                                      'no_valid_pixels', 'shortfall',
                                      'entropy_selected',
                                      'entropy_rejected')},
        pseudo_label_shares=s4['pseudo_label_shares'],
        paired=ev['paired'], verdict=verdict)
    (work / 'metrics.json').write_text(json.dumps(metrics, indent=2))

    def rel(p):
        return Path(os.path.relpath(p, work)).as_posix()

    head = (f'| stage | model | metric | all {n_val} held-out tiles | '
            f'{n_test} test tiles |')
    md_rows = [head, '|---|---|---|---|---|'] + [
        f'| {a} | {b} | {c} | {_fmt(d)} | {_fmt(e)} |' for a, b, c, d, e in
        rows]
    g_head = ('| comparison on the test tiles | metric | A | B | A - B | '
              'paired 95 % interval |')
    g_rows = [g_head, '|---|---|---|---|---|---|'] + [
        f'| {a} | {b} | {c:.2f} | {d:.2f} | {e:+.2f} | {f} |'
        for a, b, c, d, e, f in gain_rows(ev['paired'])]
    total = sum(metrics['seconds'].values())
    intro = (
        f'S5 pipeline on the Landsat-7 land-cover scene (Raleigh NC, 6 '
        f'bands, 28.5 m), seed {pipe.args.seed}: {sc["labelled_tiles"]} '
        f'labelled training tiles, {sl["pool"]} unlabelled, held-out tiles '
        f'in separate tile columns. Steps: scoring '
        f'{pipe.args.scoring_iters}, S4P {pipe.args.s4p_iters}, MoE-MDF '
        f'{pipe.args.mdf_iters}. Stage times (s): ' + ', '.join(
            f'{s} {res[s]["seconds"]:.0f}' for s in STAGES) +
        f'; {total:.0f} s in all.')
    sel_text = (f'Selection: {sl["selected"]} of {sl["pool"]} unlabelled '
                f'tiles (budget {sl["budget"]}), median entropy '
                f'{sl["entropy_selected"]:.3f} selected vs '
                f'{sl["entropy_rejected"]:.3f} rejected; '
                f'{sl["no_valid_pixels"]} pool tiles have no valid pixel.')
    pics = ev['pictures']
    lines = ['# S5 pipeline report', '', intro, '',
             '## Held-out scores (%)', '', *md_rows, '', verdict,
             'lc7 / lc3 are the MoE-MDF datasets (7 classes; non-vegetation '
             '/ vegetation / water), each scored with its own head on the '
             'test tiles (half of the held-out tile columns; the other half '
             'tuned the MDF run).', '', '## Paired gains (%)', '',
             *g_rows, '',
             'Both sides of a row are scored on the same test tiles and '
             'pixels; the interval is the 2.5-97.5 percentile of the gain '
             'over 2000 bootstrap resamples of the tiles. "Merged": the '
             '7-class predictions mapped to lc3 by the MDF config\'s class '
             'map.', '', '## Selection', '', sel_text, '',
             f'![selection summary]({rel(sl["summary_png"])})', '',
             '## Pseudo-labels on selected unlabelled tiles', '',
             'false colour (NIR, red, green) | EMA teacher prediction | '
             'kept by the S4P thresholds (white)', '']
    for p in pics['pseudo']:
        lines.append(f'{p["tile"]} (kept {100 * p["kept_share"]:.0f} %): '
                     f'![image]({rel(p["image"])}) '
                     f'![teacher]({rel(p["teacher"])}) '
                     f'![mask]({rel(p["mask"])})')
        lines.append('')
    lines += ['## Predictions on held-out test tiles', '',
              'Colours: lc7 ' + ', '.join(
                  f'{n} {_hex(c)}' for n, c in
                  zip(LANDCOVER_CLASSES, LANDCOVER_PALETTE)) + '; lc3 ' +
              ', '.join(f'{n} {_hex(c)}' for n, c in
                        zip(LC3_CLASSES, LC3_PALETTE)) + '; black nodata.',
              '', '| tile | ' + ' | '.join(COLUMNS.values()) + ' |',
              '|---' * (len(COLUMNS) + 1) + '|']
    for r in pics['heldout']:
        lines.append(f'| {r["tile"]} | ' + ' | '.join(
            f'![{c}]({rel(r[c])})' for c in COLUMNS) + ' |')
    scene = ev['scene']
    lines += ['', '## Scene map', '',
              f'Georeferenced class map (GeoTIFF): `{rel(scene["classes"])}`'
              f', confidence `{rel(scene["confidence"])}`.', '',
              f'![scene map]({rel(scene["legend"])})', '']
    md_path = work / 'report.md'
    md_path.write_text('\n'.join(lines))

    # the same as a page that opens from file:// (relative image paths)
    def img(p, alt, cls=''):
        return (f'<img src="{html.escape(rel(p))}" alt="{html.escape(alt)}"'
                + (f' class="{cls}"' if cls else '') + '>')

    t = ['<table><tr>' + ''.join(
        f'<th>{html.escape(h.strip())}</th>'
        for h in head.strip('|').split('|')) + '</tr>']
    for a, b, c, d, e in rows:
        t.append('<tr>' + ''.join(f'<td>{html.escape(str(x))}</td>' for x in
                                  (a, b, c, _fmt(d), _fmt(e))) + '</tr>')
    t.append('</table>')
    t.append('<h3>Paired gains on the test tiles (%)</h3><table><tr>' +
             ''.join(f'<th>{html.escape(h.strip())}</th>'
                     for h in g_head.strip('|').split('|')) + '</tr>')
    for a, b, c, d, e, f in gain_rows(ev['paired']):
        t.append('<tr>' + ''.join(f'<td>{html.escape(str(x))}</td>' for x in
                                  (a, b, f'{c:.2f}', f'{d:.2f}', f'{e:+.2f}',
                                   f)) + '</tr>')
    t.append('</table>')
    ps = ['<table><tr><th>tile</th><th>false colour</th><th>teacher</th>'
          '<th>kept (white)</th></tr>']
    for p in pics['pseudo']:
        ps.append(f'<tr><td>{p["tile"]}<br>kept '
                  f'{100 * p["kept_share"]:.0f} %</td>' + ''.join(
                      f'<td>{img(p[c], c, "tile")}</td>'
                      for c in ('image', 'teacher', 'mask')) + '</tr>')
    ps.append('</table>')
    hs = [_legend_html('lc7', LANDCOVER_CLASSES, LANDCOVER_PALETTE),
          _legend_html('lc3', LC3_CLASSES, LC3_PALETTE),
          '<table><tr><th>tile</th>' + ''.join(
              f'<th>{html.escape(c)}</th>' for c in COLUMNS.values()) +
          '</tr>']
    for r in pics['heldout']:
        hs.append(f'<tr><td>{r["tile"]}</td>' + ''.join(
            f'<td>{img(r[c], c, "tile")}</td>' for c in COLUMNS) + '</tr>')
    hs.append('</table>')
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>S5 pipeline report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1700px}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
img.tile{{width:{PICTURE_SIZE}px;height:{PICTURE_SIZE}px;
image-rendering:pixelated}}
.sw{{display:inline-block;width:14px;height:14px;border:1px solid #333;
margin:0 4px 0 10px;vertical-align:middle}}
</style></head><body>
<h1>S5 pipeline report</h1>
<p>{html.escape(intro)}</p>
<h2>Held-out scores (%)</h2>
{''.join(t)}
<p><b>{html.escape(verdict)}</b> lc7 / lc3 are the MoE-MDF datasets, each
scored with its own head on the test tiles.</p>
<h2>Selection</h2><p>{html.escape(sel_text)}</p>
{img(sl['summary_png'], 'selection summary')}
<h2>Pseudo-labels on selected unlabelled tiles</h2>
{''.join(ps)}
<h2>Predictions on held-out test tiles</h2>
{''.join(hs)}
<h2>Scene map</h2>
<p>Georeferenced class map: <code>{html.escape(rel(scene['classes']))}</code>
</p>
{img(scene['legend'], 'scene map')}
<script>
// how many pictures loaded (a headless-browser test reads data-images)
window.addEventListener('load', function () {{
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {{
    if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  }}
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
}});
</script>
</body></html>
"""
    html_path = work / 'index.html'
    html_path.write_text(page)
    return dict(md=str(md_path), html=str(html_path),
                metrics=str(work / 'metrics.json'))


# ------------------------------------------------------ several seeds
SEED_COLUMNS = (  # (results key path, heading)
    (('evaluation', 'paired', 'scores', 'supervised'), 'supervised lc7 mIoU'),
    (('evaluation', 'paired', 'scores', 's4p'), 'S4P lc7 mIoU'),
    (('evaluation', 'paired', 'scores', 'moe_lc7'), 'MoE-MDF lc7 mIoU'),
    (('evaluation', 'paired', 'scores', 's4p_merged'), 'S4P merged lc3 mF1'),
    (('evaluation', 'paired', 'scores', 'moe_lc3'), 'MoE-MDF lc3 mF1'),
)


def _get(d, path):
    for k in path:
        d = d[k]
    return d


def write_seed_report(work, seeds, runs):
    """``report.md`` / ``metrics.json`` over the seeds: each seed's test
    scores, their mean and spread, and paired intervals of the mean gain
    (tiles resampled once for all seeds)."""
    import numpy as np

    from s5_mm.evaluation.bootstrap import (METRICS, mean_interval,
                                            paired_bootstrap)
    work = Path(work)
    per_seed = [[_get(r['stages'], path) for path, _ in SEED_COLUMNS]
                for r in runs]
    spread = [mean_interval([row[j] for row in per_seed])
              for j in range(len(SEED_COLUMNS))]
    confs = [np.load(_get(r['stages'], ('evaluation', 'paired',
                                        'confusions')))
             for r in runs]
    paths = [c['paths'].tolist() for c in confs]
    if any(p != paths[0] for p in paths):
        raise RuntimeError('the seeds were tested on different tiles')
    gains = {}
    for key, (a, b, metric, text) in COMPARISONS.items():
        gains[key] = dict(paired_bootstrap(
            np.stack([c[a] for c in confs]), np.stack([c[b] for c in confs]),
            METRICS[metric]), text=text, metric=metric,
            per_seed=[_get(r['stages'], ('evaluation', 'paired', 'gains',
                                         key, 'delta')) for r in runs])
    head = '| seed | ' + ' | '.join(h for _, h in SEED_COLUMNS) + ' |'
    lines = ['# S5 pipeline report over seeds', '',
             f'Seeds {", ".join(map(str, seeds))} (one pipeline each: '
             f'`seed_<s>/report.md`), the same {len(paths[0])} test tiles. '
             'Test scores (%):', '', head,
             '|---' * (len(SEED_COLUMNS) + 1) + '|']
    for seed, row in zip(seeds, per_seed):
        lines.append(f'| {seed} | ' + ' | '.join(f'{v:.2f}' for v in row) +
                     ' |')
    lines.append('| mean +- sd | ' + ' | '.join(
        f'{m["mean"]:.2f} +- {m["sd"]:.2f}' for m in spread) + ' |')
    lines += ['', '## Paired gains, mean over the seeds (%)', '',
              '| comparison | metric | per seed | mean A - B | paired 95 % '
              'interval |', '|---|---|---|---|---|']
    for g in gains.values():
        lines.append(f'| {g["text"]} | {g["metric"]} | ' + ', '.join(
            f'{d:+.2f}' for d in g['per_seed']) + f' | {g["delta"]:+.2f} | '
            f'[{g["low"]:+.2f}, {g["high"]:+.2f}] |')
    lines += ['', 'The interval resamples the test tiles (2000 times) and '
              'averages the gain over the seeds on each resample; the seeds '
              'themselves are not resampled, so the seed spread is the sd '
              'column above.', '']
    (work / 'report.md').write_text('\n'.join(lines))
    _seed_page(work, seeds, lines)
    metrics = dict(seeds=list(seeds), columns=[h for _, h in SEED_COLUMNS],
                   per_seed=per_seed, mean=spread, gains=gains,
                   runs=[str(work / f'seed_{s}') for s in seeds])
    (work / 'metrics.json').write_text(json.dumps(metrics, indent=2))
    return dict(md=str(work / 'report.md'), html=str(work / 'index.html'),
                metrics=str(work / 'metrics.json'))


def _seed_page(work, seeds, md_lines):
    """``index.html``: the report's tables, and links to each seed's page."""
    body, table = [], []

    def flush():
        if table:
            rows = [r for r in table if not set(r) <= set('|-')]
            cells = [[c.strip() for c in r.strip('|').split('|')]
                     for r in rows]
            body.append('<table>' + ''.join(
                '<tr>' + ''.join(f'<{t}>{html.escape(c)}</{t}>'
                                 for c in row) + '</tr>'
                for row, t in zip(cells, ['th'] + ['td'] * len(cells))) +
                '</table>')
            table.clear()
    for line in md_lines[1:]:
        if line.startswith('|'):
            table.append(line)
            continue
        flush()
        if line.startswith('## '):
            body.append(f'<h2>{html.escape(line[3:])}</h2>')
        elif line:
            body.append(f'<p>{html.escape(line)}</p>')
    flush()
    links = ' '.join(f'<a href="seed_{s}/index.html">seed {s}</a>'
                     for s in seeds)
    (Path(work) / 'index.html').write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<title>S5 pipeline report over seeds</title><style>'
        'body{font-family:sans-serif;margin:2em;max-width:1300px}'
        'table{border-collapse:collapse;margin:1em 0}'
        'td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}'
        '</style></head><body><h1>S5 pipeline report over seeds</h1>' +
        ''.join(body) + f'<p>Each seed\'s report: {links}</p></body></html>')


def main(argv=None):
    import copy
    args = parse_args(argv)
    import s5_mm  # noqa: F401
    seeds = args.seeds or [args.seed]
    if len(seeds) == 1:
        args.seed = seeds[0]
        return Pipeline(args).run()
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f'--seeds repeats a seed: {seeds}')
    runs = []
    for seed in seeds:
        a = copy.copy(args)
        a.seed, a.seeds = seed, None
        a.work_dir = str(Path(args.work_dir) / f'seed_{seed}')
        print(f'=== seed {seed} -> {a.work_dir}', flush=True)
        runs.append(Pipeline(a).run())
    report = write_seed_report(args.work_dir, seeds, runs)
    print(f'report over seeds {seeds}: {report["md"]}', flush=True)
    return dict(runs=runs, report=report)


if __name__ == '__main__':
    main()
