"""MultiHeadTwoStageDetector: per-dataset Oriented R-CNN branches on a
shared MoE ViT, on CPU with a tiny model."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.structures import InstanceData

import s5_mm  # noqa: F401
import s5_mm.models.detectors  # noqa: F401

BASE = (Path(__file__).resolve().parents[3] / 'configs' / '_base_' /
        'models' / 's5_moe_oriented_rcnn_vit.py')


def tiny_cfg():
    cfg = Config.fromfile(str(BASE))
    m = cfg.model
    m.backbone.update(arch='tiny', img_size=64, patch_size=4, expert_width=16)
    m.neck.in_channels = 64
    for name, n_cls in (('dior', 5), ('dota', 3)):
        b = m.dataset_heads[name]
        b.neck.update(in_channels=[64] * 4, out_channels=32)
        b.rpn_head.update(in_channels=32, feat_channels=32)
        b.roi_head.bbox_roi_extractor.out_channels = 32
        b.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64,
                                    num_classes=n_cls)
    m.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    m.train_cfg.rcnn.sampler.num = 64
    m.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    return m


def build(score_thr=None):
    from mmdet.structures import DetDataSample  # noqa: F401
    init_default_scope('mmrotate')
    torch.manual_seed(0)
    cfg = tiny_cfg()
    if score_thr is not None:  # untrained heads score below the default
        cfg.test_cfg.rcnn.score_thr = score_thr
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def sample(name, n_boxes, seed, **meta):
    """A 64x64 sample with random rotated boxes; ``name=None`` leaves out
    ``dataset_name`` (route by a ``dataset_id`` in ``meta``)."""
    from mmdet.structures import DetDataSample
    from mmrotate.structures import RotatedBoxes
    g = torch.Generator().manual_seed(seed)
    if name is not None:
        meta['dataset_name'] = name
    s = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                    ori_shape=(64, 64),
                                    scale_factor=(1., 1.), **meta))
    xy = torch.rand(n_boxes, 2, generator=g) * 40 + 12
    wh = torch.rand(n_boxes, 2, generator=g) * 12 + 8
    theta = torch.rand(n_boxes, 1, generator=g) - 0.5
    s.gt_instances = InstanceData(
        bboxes=RotatedBoxes(torch.cat([xy, wh, theta], 1)),
        labels=torch.randint(0, 3, (n_boxes, ), generator=g))
    return s


def test_loss_per_dataset_and_backward():
    model = build().train()
    names = ['dota', 'dior', 'dota']
    data = [sample(n, 3, i) for i, n in enumerate(names)]
    losses = model.loss(torch.randn(3, 3, 64, 64), data)
    prefixes = {k.split('.', 1)[0] for k in losses}
    assert prefixes == {'dior', 'dota'}
    assert {'dior.loss_rpn_cls', 'dota.loss_rpn_bbox', 'dota.loss_bbox',
            'dior.loss_cls'} <= set(losses), sorted(losses)
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    dior_fc = model.branches['dior'].roi_head.bbox_head.fc_cls.weight
    assert dior_fc.grad is not None
    bb = model.backbone.blocks[0].mlp
    assert bb.experts[0].weight.grad is not None  # dior = expert 0
    assert bb.experts[1].weight.grad is not None


def test_predict_uses_each_dataset_head():
    model = build(score_thr=0.).eval()
    names = ['dior', 'dota']
    data = [sample(n, 2, i) for i, n in enumerate(names)]
    max_per_img = model.test_cfg.rcnn.max_per_img
    with torch.no_grad():
        out = model.predict(torch.randn(2, 3, 64, 64), data)
    for s, n_cls in zip(out, (5, 3)):
        pred = s.pred_instances
        n = len(pred)
        assert 0 < n <= max_per_img  # score_thr=0: every image has boxes
        assert pred.bboxes.shape == (n, 5)  # rotated boxes
        assert torch.isfinite(pred.bboxes).all()
        assert (pred.bboxes[:, 2:4] > 0).all()
        assert pred.scores.shape == (n, ) and (pred.scores > 0).all()
        assert int(pred.labels.min()) >= 0
        assert int(pred.labels.max()) < n_cls  # the dataset's own head


def test_predict_of_a_dataset_ignores_the_other_branch_and_expert():
    model = build(score_thr=0.).eval()
    x = torch.randn(2, 3, 64, 64)

    def run():
        data = [sample('dior', 2, 0), sample('dota', 2, 1)]
        with torch.no_grad():
            return [s.pred_instances for s in model.predict(x, data)]

    ref = run()
    with torch.no_grad():
        for p in model.branches['dota'].parameters():
            p.mul_(1.5)
        for blk in model.backbone.blocks:
            blk.mlp.experts[1].weight.add_(0.5)  # dota = expert 1
    out = run()
    assert len(out[0]) > 0
    for key in ('bboxes', 'scores', 'labels'):
        torch.testing.assert_close(out[0][key], ref[0][key], rtol=0, atol=0)
    assert not (len(out[1]) == len(ref[1])
                and torch.equal(out[1].scores, ref[1].scores))


def test_loss_of_a_dataset_never_touches_branch_or_expert_b():
    model = build().train()
    data = [sample('dior', 3, i) for i in range(2)]
    losses = model.loss(torch.randn(2, 3, 64, 64), data)
    assert {k.split('.', 1)[0] for k in losses} == {'dior'}
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    total.backward()

    def untouched(params):
        return all(p.grad is None or not p.grad.any() for p in params)

    assert untouched(model.branches['dota'].parameters())
    assert not untouched(model.branches['dior'].roi_head.parameters())
    for blk in model.backbone.blocks:  # dior = expert 0
        assert untouched(blk.mlp.experts[1].parameters())
        assert blk.mlp.experts[0].weight.grad.abs().sum() > 0


def test_unknown_dataset():
    model = build().eval()
    with pytest.raises(KeyError, match="unknown dataset 'dota2'"):
        model.predict(torch.randn(1, 3, 64, 64), [sample('dota2', 1, 0)])


@pytest.mark.parametrize('bad', [-1, 2])
def test_dataset_id_out_of_range(bad):
    """A negative id must not silently pick the last dataset."""
    model = build().eval()
    s = sample(None, 1, 0, dataset_id=bad, img_path='scene_3.png')
    with pytest.raises(KeyError, match=rf'sample 0 \(scene_3.png\): '
                       rf'dataset_id {bad} out of range'):
        model.predict(torch.randn(1, 3, 64, 64), [s])


def test_dataset_id_routes_like_dataset_name():
    model = build(score_thr=0.).eval()
    assert model.dataset_names == ['dior', 'dota']
    x = torch.randn(2, 3, 64, 64)
    by_name = [sample('dota', 2, 0), sample('dior', 2, 1)]
    by_id = [sample(None, 2, 0, dataset_id=1),
             sample(None, 2, 1, dataset_id=0)]
    with torch.no_grad():
        ref = model.predict(x, by_name)
        out = model.predict(x, by_id)
    for a, b in zip(out, ref):
        assert len(a.pred_instances) > 0
        torch.testing.assert_close(a.pred_instances.bboxes,
                                   b.pred_instances.bboxes, rtol=0, atol=0)
