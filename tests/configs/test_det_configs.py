"""Oriented-detection configs: the paper's parameter counts and settings
(S5_METHOD.md sections 3-5), and the CPU path end to end on the real DOTA
images (split, train a few steps through mmengine's Runner, predict,
score): rotated NMS, rotated IoU and rotated RoI align on CPU."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import s5_mm  # noqa: F401
from s5_mm.testing import load_tool

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs'


def n_params(rel):
    cfg = Config.fromfile(str(CFG / rel))
    init_default_scope(cfg.default_scope)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)


@pytest.mark.parametrize('rel,expected', [
    ('mdf_det/vit-b-moe_dior-r_dota2.py', 138.3),
    ('mdf_det/vit-l-moe_dior-r_dota2.py', 377.8),
    ('mdf_det/vit-h-moe_dior-r_dota2.py', 730.0),
    ('sdf_det/vit-b_dior-r.py', 111.2),
    ('sdf_det/vit-b_dota2.py', 111.2),
])
def test_paper_parameter_counts(rel, expected):
    assert n_params(rel) == expected


def _leaves(ds):
    if 'datasets' in ds:
        for d in ds['datasets']:
            yield from _leaves(d)
    elif 'dataset' in ds:  # SeededDataset
        yield from _leaves(ds['dataset'])
    else:
        yield ds


@pytest.mark.parametrize('arch', ['b', 'l', 'h'])
def test_moe_settings_of_the_paper(arch):
    cfg = Config.fromfile(str(CFG / f'mdf_det/vit-{arch}-moe_dior-r_dota2.py'))
    assert cfg.default_scope == 'mmrotate'
    m = cfg.model
    assert m.type == 'mmdet.MultiHeadTwoStageDetector'
    assert (m.backbone.arch, m.backbone.num_experts,
            m.backbone.expert_width) == (arch, 2, 256)
    assert m.backbone.init_cfg.prefix == 'student.backbone.'
    assert f'vit-{arch}' in m.backbone.init_cfg.checkpoint
    assert m.dataset_names == ['dior', 'dota']
    heads = m.dataset_heads
    assert heads.dior.roi_head.bbox_head.num_classes == 20
    assert heads.dota.roi_head.bbox_head.num_classes == 18
    for h in heads.values():  # Oriented R-CNN pieces, le90
        assert h.rpn_head.type == 'OrientedRPNHead'
        assert h.rpn_head.bbox_coder.type == 'MidpointOffsetCoder'
        assert h.rpn_head.bbox_coder.angle_version == 'le90'
        roi = h.roi_head.bbox_roi_extractor.roi_layer
        assert (roi.type, roi.out_size) == ('RoIAlignRotated', 7)
        assert h.roi_head.bbox_head.type == 'mmdet.Shared2FCBBoxHead'
        assert h.roi_head.bbox_head.bbox_coder.angle_version == 'le90'
    opt = cfg.optim_wrapper
    assert (opt.optimizer.type, opt.optimizer.lr,
            opt.optimizer.weight_decay) == ('AdamW', 1e-4, 0.05)
    assert opt.clip_grad.max_norm == 35
    warm, step = cfg.param_scheduler
    assert (warm.type, warm.by_epoch, warm.end) == ('LinearLR', False, 500)
    # epochs of DIOR-R trainval, converted by MultiSourceTrainLoop for the
    # GPU count (tests/datasets/test_multi_dataset.py)
    assert (cfg.train_cfg.type, cfg.train_cfg.max_epochs,
            cfg.train_cfg.epoch_source) == ('mmseg.MultiSourceTrainLoop', 12, 0)
    assert cfg.train_dataloader.dataset.type == 'SeededDataset'
    dior = cfg.train_dataloader.dataset.dataset.datasets[0]  # DIOR-R t+v
    assert [d.type for d in dior.datasets] == ['mmrotate.S5DIORDataset'] * 2
    assert (step.by_epoch, step.convert_to_iter_based, step.end,
            step.milestones, step.gamma) == (True, True, 12, [8, 11], 0.1)
    loader = cfg.train_dataloader
    assert loader.sampler.type == 'SeededMultiSourceSampler'
    assert loader.batch_size == loader.sampler.batch_size == 4
    assert loader.sampler.source_ratio == [2, 2]  # 2 images per dataset
    names = [d.get('dataset_name')
             for d in loader.dataset.dataset.datasets]
    assert names == [None, 'dota']  # DIOR-R: train + val, each 'dior'
    for d in _leaves(loader.dataset):
        resize = [t for t in d.pipeline if t.type == 'mmdet.Resize']
        assert resize[0].scale == (1024, 1024)
        pack = d.pipeline[-1]
        assert 'dataset_name' in pack.meta_keys
        assert d.get('dataset_name', 'dior') in ('dior', 'dota')
    assert [e.dataset_name for e in cfg.val_evaluator] == ['dior', 'dota']
    assert cfg.val_evaluator[0].eval_mode == '11points'
    assert cfg.test_evaluator[1].format_only
    assert cfg.test_evaluator[1].merge_patches


def test_single_dataset_schedule_on_epochs():
    cfg = Config.fromfile(str(CFG / 'sdf_det/vit-b_dior-r.py'))
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.param_scheduler[1].milestones == [8, 11]
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.val_dataloader.dataset.diff_thr == 0  # VOC: difficult ignored


# -------------------------------------------------- CPU, end to end
@pytest.fixture(scope='module')
def demo(shared_data, tmp_path_factory):
    mod = load_tool('run_det_demo.py')
    work = tmp_path_factory.mktemp('det_demo')
    dota_root, dior_lists, counts = mod.prepare_data(str(work), 512, 128)
    assert counts == dict(train=18, heldout=8, dior_train=8, dior_heldout=6)
    return mod, work, dota_root, dior_lists


def _np(x, width):
    x = getattr(x, 'tensor', x)
    x = x.detach().cpu().numpy() if hasattr(x, 'detach') else np.asarray(x)
    return x.astype(np.float32).reshape(-1, width)


def voc_ap(samples, cls, thr, mode):
    """Rotated-box AP of class ``cls`` over ``samples`` (as the evaluator
    got them), by the VOC protocol written out here: per image, detections
    by descending score take the unmatched ground truth of highest rotated
    IoU >= ``thr`` (a difficult one: neither TP nor FP); then all images'
    detections by descending score (stable) give precision / recall, and
    ``'11points'`` averages the best precision at recall >= 0, 0.1, ..., 1,
    ``'area'`` integrates the monotone precision envelope."""
    from mmcv.ops import box_iou_rotated
    scores, tps, fps, n_gt = [], [], [], 0
    for s in samples:
        p, g = s['pred_instances'], s['gt_instances']
        ign = s.get('ignored_instances', {})
        keep = _np(p['labels'], 1)[:, 0] == cls
        det, sc = _np(p['bboxes'], 5)[keep], _np(p['scores'], 1)[keep, 0]
        gt = _np(g['bboxes'], 5)[_np(g['labels'], 1)[:, 0] == cls]
        ig = _np(ign.get('bboxes', np.zeros((0, 5))), 5)[
            _np(ign.get('labels', np.zeros(0)), 1)[:, 0] == cls]
        n_gt += len(gt)
        boxes = np.concatenate([gt, ig])
        tp, fp = np.zeros(len(det)), np.zeros(len(det))
        if len(boxes) and len(det):
            iou = box_iou_rotated(torch.from_numpy(det),
                                  torch.from_numpy(boxes)).numpy()
            taken = np.zeros(len(boxes), bool)
            for i in np.argsort(-sc):
                m = iou[i].argmax()
                if iou[i, m] < thr:
                    fp[i] = 1
                elif m < len(gt):  # a difficult match counts neither way
                    tp[i], fp[i] = (0, 1) if taken[m] else (1, 0)
                    taken[m] = True
        else:
            fp[:] = 1
        scores.append(sc)
        tps.append(tp)
        fps.append(fp)
    order = np.argsort(-np.concatenate(scores), kind='stable')
    tp = np.cumsum(np.concatenate(tps)[order])
    fp = np.cumsum(np.concatenate(fps)[order])
    eps = np.finfo(np.float32).eps
    rec, prec = tp / max(n_gt, eps), tp / np.maximum(tp + fp, eps)
    if not len(tp):
        return 0., n_gt
    if mode == '11points':
        return float(np.mean([prec[rec >= t].max() if (rec >= t).any()
                              else 0. for t in np.arange(0, 1.1, 0.1)])), n_gt
    r = np.concatenate([[0.], rec, [1.]])
    q = np.concatenate([[0.], prec, [0.]])
    q = np.maximum.accumulate(q[::-1])[::-1]
    i = np.flatnonzero(r[1:] != r[:-1])
    return float(((r[i + 1] - r[i]) * q[i + 1]).sum()), n_gt


@pytest.mark.parametrize('kind', ['plain', 'moe'])
def test_train_and_test_on_cpu(demo, kind, monkeypatch):
    from mmengine.runner import Runner

    from s5_mm.evaluation.metrics import RotatedVOCMetric
    seen = []  # (metric, its samples) as the evaluator hands them over
    process = RotatedVOCMetric.process

    def spy(self, data_batch, data_samples):
        if not any(m is self for m, _ in seen):
            seen.append((self, []))
        next(v for m, v in seen if m is self).extend(
            s for s in data_samples if self.dataset_name is None or
            s.get('dataset_name', self.dataset_name) == self.dataset_name)
        return process(self, data_batch, data_samples)

    monkeypatch.setattr(RotatedVOCMetric, 'process', spy)
    mod, work, dota_root, dior_lists = demo
    cfg = mod.build_cfg(mod.CONFIGS[kind], str(work / kind), dota_root,
                        dior_lists, iters=2, seed=0)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    for d in _leaves(cfg.test_dataloader.dataset):
        d.indices = 1  # one patch / crop per dataset
    cfg.model.test_cfg.rcnn.score_thr = 0.  # untrained: low scores
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    if kind == 'moe':
        for k in ('train/dior.loss_bbox', 'train/dota.loss_rpn_cls'):
            assert math.isfinite(runner.message_hub.get_scalar(k).current())
    metrics = runner.test()
    prefixes = ['dota'] if kind == 'plain' else ['dior', 'dota']
    assert sorted(m.prefix or m.dataset_name for m, _ in seen) == prefixes
    # each AP recomputed from the detections and labels the metric got
    for metric, samples in seen:
        p = metric.prefix or metric.dataset_name
        assert len(samples) == 1  # one patch / crop per dataset
        aps = []
        for thr in metric.iou_thrs:
            per_class = [voc_ap(samples, c, thr, metric.eval_mode)
                         for c in range(len(metric._classes()))]
            ap = round(float(np.mean([a for a, n in per_class if n])), 4)
            key = f'AP{round(thr * 100):02d}'
            assert metrics[f'{p}/{key}'] == pytest.approx(ap, abs=1e-4), key
            aps.append(ap)
        assert metrics[f'{p}/mAP'] == pytest.approx(np.mean(aps), abs=1e-4)
        assert sorted(metric.iou_thrs) == [0.1, 0.3, 0.5]
    assert (work / kind / 'iter_2.pth').is_file()
