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


def build():
    from mmdet.structures import DetDataSample  # noqa: F401
    init_default_scope('mmrotate')
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg())
    model.init_weights()
    return model


def sample(name, n_boxes, seed):
    from mmdet.structures import DetDataSample
    from mmrotate.structures import RotatedBoxes
    g = torch.Generator().manual_seed(seed)
    s = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                    ori_shape=(64, 64),
                                    scale_factor=(1., 1.),
                                    dataset_name=name))
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
    model = build().eval()
    names = ['dior', 'dota']
    data = [sample(n, 2, i) for i, n in enumerate(names)]
    with torch.no_grad():
        out = model.predict(torch.randn(2, 3, 64, 64), data)
    for s, n_cls in zip(out, (5, 3)):
        pred = s.pred_instances
        assert pred.bboxes.shape[-1] == 5  # rotated boxes
        if len(pred.labels):
            assert int(pred.labels.max()) < n_cls


def test_unknown_dataset():
    model = build().eval()
    with pytest.raises(KeyError, match="unknown dataset 'dota2'"):
        model.predict(torch.randn(1, 3, 64, 64), [sample('dota2', 1, 0)])
