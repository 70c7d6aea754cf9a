"""MultiHeadTwoStageDetector: the backbone initialised from an S4P
checkpoint (``student.backbone.`` keys, plain fc2 split into the shared
part and one copy per expert: step 0 computes the pre-trained function) or
a converted MAE checkpoint (class-token slot in pos_embed), and per-dataset
loss weights."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import s5_mm  # noqa: F401
from s5_mm.models.backbones.vit import S5ViT
from mmrotate.structures import RotatedBoxes

BASE = (Path(__file__).resolve().parents[3] / 'configs' / '_base_' /
        'models' / 's5_moe_oriented_rcnn_vit.py')
P = 16  # expert width of the tiny model


def tiny_cfg():
    m = Config.fromfile(str(BASE)).model
    m.backbone.update(arch='tiny', img_size=64, patch_size=4, expert_width=P)
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


def build(cfg):
    init_default_scope('mmrotate')
    return MODELS.build(cfg)


def plain_vit():
    torch.manual_seed(1)
    vit = S5ViT(arch='tiny', img_size=64, patch_size=4, drop_path_rate=0.)
    vit.init_weights()
    return vit.eval()


def test_init_from_s4p_checkpoint(tmp_path):
    vit = plain_vit()
    state = {f'student.backbone.{k}': v for k, v in vit.state_dict().items()}
    state.update({f'teacher.backbone.{k}': v + 1
                  for k, v in vit.state_dict().items()})
    state['student.decode_head.conv_seg.weight'] = torch.zeros(16, 256, 1, 1)
    ckpt = tmp_path / 's4p.pth'
    torch.save(dict(state_dict=state, meta=dict()), ckpt)

    cfg = tiny_cfg()
    cfg.backbone.drop_path_rate = 0.
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(ckpt),
                                 prefix='student.backbone.')
    model = build(cfg)
    model.init_weights()
    bb = model.backbone.eval()
    C = bb.embed_dims
    for blk, ref in zip(bb.blocks, vit.blocks):
        w, b = ref.mlp.fc2.weight, ref.mlp.fc2.bias
        torch.testing.assert_close(blk.mlp.fc2_shared.weight, w[:C - P])
        torch.testing.assert_close(blk.mlp.fc2_shared.bias, b[:C - P])
        for e in blk.mlp.experts:  # every expert: the same rows of fc2
            torch.testing.assert_close(e.weight, w[C - P:])
            torch.testing.assert_close(e.bias, b[C - P:])
    torch.testing.assert_close(bb.pos_embed, vit.pos_embed)  # student's
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = vit(x)
        for ids in ([0, 0], [1, 1], [0, 1]):
            out = bb(x, dataset_ids=torch.tensor(ids))
            for o, r in zip(out, ref):
                torch.testing.assert_close(o, r, atol=1e-5, rtol=1e-5)


def test_init_from_converted_mae_checkpoint(tmp_path):
    """MAE weights after tools/model_converters/mae2s5mm.py: plain keys, a
    pos_embed with the class-token slot."""
    vit = plain_vit()
    state = dict(vit.state_dict())
    grid = vit.pos_embed.reshape(1, 16, 16, -1)
    state['pos_embed'] = torch.cat([torch.zeros(1, 1, 64),
                                    vit.pos_embed], 1)  # + cls slot
    ckpt = tmp_path / 'mae.pth'
    torch.save(state, ckpt)
    cfg = tiny_cfg()
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(ckpt))
    model = build(cfg)
    model.init_weights()
    torch.testing.assert_close(model.backbone.pos_embed,
                               grid.reshape(1, 256, 64))
    torch.testing.assert_close(model.backbone.patch_embed.proj.weight,
                               vit.patch_embed.proj.weight)
    blk = model.backbone.blocks[2].mlp
    torch.testing.assert_close(blk.experts[1].weight,
                               vit.blocks[2].mlp.fc2.weight[64 - P:])


def sample(name, n, seed):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    s = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                    ori_shape=(64, 64),
                                    scale_factor=(1., 1.),
                                    dataset_name=name))
    box = torch.cat([torch.rand(n, 2, generator=g) * 40 + 12,
                     torch.rand(n, 2, generator=g) * 12 + 8,
                     torch.rand(n, 1, generator=g) - 0.5], 1)
    s.gt_instances = InstanceData(
        bboxes=RotatedBoxes(box),
        labels=torch.randint(0, 3, (n, ), generator=g))
    return s


def losses_with(weights):
    cfg = tiny_cfg()
    if weights is not None:
        cfg.loss_weights = weights
    torch.manual_seed(0)
    model = build(cfg).train()
    model.init_weights()
    data = [sample('dior', 3, 0), sample('dota', 3, 1)]
    torch.manual_seed(5)  # the RPN / RoI samplers draw at random
    return model.loss(torch.randn(2, 3, 64, 64, generator=torch.Generator(
    ).manual_seed(2)), copy.deepcopy(data))


def _value(v):
    return sum(x.sum() for x in v) if isinstance(v, list) else v.sum()


def test_loss_weights_scale_each_dataset():
    ref = losses_with(None)
    out = losses_with(dict(dior=0.5, dota=2.0))
    assert set(ref) == set(out)
    for k in ref:
        w = 1. if 'loss' not in k else (0.5 if k.startswith('dior.')
                                        else 2.0)
        torch.testing.assert_close(_value(out[k]), _value(ref[k]) * w)
    assert any(_value(ref[k]) > 0 for k in ref if k.startswith('dota.loss'))


def test_loss_weights_name_known_datasets():
    cfg = tiny_cfg()
    cfg.loss_weights = dict(dota2=1.0)
    with pytest.raises(KeyError, match=r"loss_weights names datasets "
                       r"\['dota2'\]"):
        build(cfg)
