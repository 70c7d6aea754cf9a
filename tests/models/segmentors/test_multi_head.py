"""MultiHeadEncoderDecoder: per-dataset routing in loss and predict."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import s5_mm  # noqa: F401
from s5_mm.models.segmentors.multi_head import MultiHeadEncoderDecoder
from s5_mm.registry import MODELS

NAMES = ['potsdam', 'loveda']


def head(num_classes):
    return dict(type='UPerHead',
                in_channels=[32] * 4,
                in_index=[0, 1, 2, 3],
                pool_scales=(1, 2),
                channels=16,
                dropout_ratio=0.1,
                num_classes=num_classes,
                norm_cfg=dict(type='BN', requires_grad=True),
                align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))


def model_cfg(num_experts=2):
    return dict(type='MultiHeadEncoderDecoder',
                data_preprocessor=dict(type='SegDataPreProcessor',
                                       mean=[0.] * 3,
                                       std=[1.] * 3),
                backbone=dict(type='S5ViT',
                              arch=dict(embed_dims=32,
                                        num_layers=2,
                                        num_heads=2,
                                        out_indices=(0, 1, 1, 1)),
                              img_size=32,
                              patch_size=4,
                              drop_path_rate=0.,
                              num_experts=num_experts,
                              expert_width=8,
                              dataset_names=NAMES if num_experts else None),
                neck=dict(type='SimpleFeaturePyramid', in_channels=32),
                decode_head=dict(potsdam=head(5), loveda=head(7)),
                train_cfg=dict(),
                test_cfg=dict(mode='whole'))


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def build(num_experts=2):
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(model_cfg(num_experts)))
    model.init_weights()
    for blk in model.backbone.blocks:  # distinct experts
        for e in getattr(blk.mlp, 'experts', []):
            torch.nn.init.normal_(e.weight, std=0.2)
    return model


def samples(names, key='dataset_name', size=32):
    out = []
    for i, n in enumerate(names):
        s = SegDataSample(metainfo=dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size),
            padding_size=[0, 0, 0, 0],
            **{key: n if key == 'dataset_name' else NAMES.index(n)}))
        g = torch.Generator().manual_seed(i)
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, 5, (1, size, size), generator=g))
        out.append(s)
    return out


def test_builds_from_registry_with_head_dict():
    model = build()
    assert isinstance(model, MultiHeadEncoderDecoder)
    assert list(model.decode_head) == NAMES
    assert model.decode_head['loveda'].conv_seg.out_channels == 7
    with pytest.raises(TypeError, match='dataset_name: head config'):
        cfg = model_cfg()
        cfg['decode_head'] = head(5)
        MODELS.build(cfg)


def test_loss_mixed_batch_equals_per_dataset_losses():
    model = build().train()
    # two samples per dataset: UperNet's 1x1 pooling branch has BN
    x = torch.randn(4, 3, 32, 32)
    names = ['loveda', 'potsdam', 'loveda', 'potsdam']
    data = samples(names)
    torch.manual_seed(0)
    losses = model.loss(x, data)
    assert set(losses) == {
        'potsdam.decode.loss_ce', 'potsdam.decode.acc_seg',
        'loveda.decode.loss_ce', 'loveda.decode.acc_seg'
    }
    # reference: backbone per sample with its own expert, head per dataset
    # (eval-mode dropout/BN would differ, so compare in eval mode)
    model.eval()
    losses = model.loss(x, data)
    for name, idx in (('loveda', [0, 2]), ('potsdam', [1, 3])):
        feats = model.extract_feat(x[idx], [name] * len(idx))
        ref = model.decode_head[name].loss(feats, [data[i] for i in idx],
                                           model.train_cfg)
        torch.testing.assert_close(losses[f'{name}.decode.loss_ce'],
                                   ref['loss_ce'],
                                   rtol=1e-5,
                                   atol=1e-6)


def test_train_step_updates_only_used_heads():
    model = build().train()
    x = torch.randn(2, 3, 32, 32)
    losses = model.loss(x, samples(['potsdam', 'potsdam']))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.decode_head['potsdam'].conv_seg.weight.grad is not None
    assert model.decode_head['loveda'].conv_seg.weight.grad is None
    assert model.backbone.blocks[0].mlp.experts[0].weight.grad is not None
    assert model.backbone.blocks[0].mlp.experts[1].weight.grad is None


@pytest.mark.parametrize('key', ['dataset_name', 'dataset_id'])
def test_predict_routes_each_sample_to_its_head(key):
    model = build().eval()
    x = torch.randn(3, 3, 32, 32)
    names = ['potsdam', 'loveda', 'potsdam']
    with torch.no_grad():
        preds = model.predict(x, samples(names, key))
        for i, name in enumerate(names):
            single = model.predict(x[i:i + 1], samples([name], key))[0]
            assert preds[i].seg_logits.data.shape[0] == (5 if name == 'potsdam'
                                                         else 7)
            torch.testing.assert_close(preds[i].seg_logits.data,
                                       single.seg_logits.data,
                                       rtol=1e-4,
                                       atol=1e-5)
            assert preds[i].pred_sem_seg.data.shape == (1, 32, 32)


def test_slide_inference_uses_the_dataset_head():
    model = build().eval()
    model.test_cfg = ConfigDict(mode='slide',
                                crop_size=(32, 32),
                                stride=(16, 16))
    with torch.no_grad():
        pred = model.predict(torch.randn(1, 3, 48, 48),
                             samples(['loveda'], size=48))[0]
    assert pred.seg_logits.data.shape == (7, 48, 48)


def test_plain_backbone_multi_head():
    model = build(num_experts=0).eval()
    with torch.no_grad():
        out = model._forward(torch.randn(2, 3, 32, 32),
                             samples(['loveda', 'potsdam']))
    assert out['loveda'].shape[:2] == (1, 7) and out['potsdam'].shape[1] == 5


def test_routing_errors():
    model = build().eval()
    bad = samples(['potsdam'])
    bad[0].set_metainfo(dict(dataset_name='isaid'))
    with pytest.raises(KeyError, match="unknown dataset 'isaid'"):
        model.predict(torch.randn(1, 3, 32, 32), bad)
    plain = SegDataSample(metainfo=dict(img_shape=(32, 32)))
    with pytest.raises(KeyError, match="neither 'dataset_name'"):
        model.loss(torch.randn(1, 3, 32, 32), [plain])
    cfg = copy.deepcopy(model_cfg())
    cfg['backbone']['dataset_names'] = ['potsdam', 'isaid']
    with pytest.raises(ValueError, match='must be the decode_head keys'):
        MODELS.build(ConfigDict(cfg))
    cfg['dataset_names'] = NAMES
    with pytest.raises(ValueError,
                       match=r"datasets \['loveda'\] have no expert"):
        MODELS.build(ConfigDict(cfg))


def test_init_from_single_head_s4p_checkpoint():
    """Every dataset decoder starts from the S4P decoder, the MoE backbone
    from the plain one; classifiers stay new."""
    cfg = model_cfg(num_experts=0)
    cfg.update(type='EncoderDecoder', decode_head=head(16))
    init_default_scope('mmseg')
    torch.manual_seed(3)
    s4p = MODELS.build(ConfigDict(cfg))
    s4p.init_weights()
    mdf = build()
    result = mdf.load_state_dict(s4p.state_dict(), strict=False)
    assert sorted(result.missing_keys) == sorted(
        f'decode_head.{n}.conv_seg.{p}' for n in NAMES
        for p in ('weight', 'bias'))
    assert result.unexpected_keys == []
    for n in NAMES:
        torch.testing.assert_close(
            mdf.decode_head[n].fpn_bottleneck.conv.weight,
            s4p.decode_head.fpn_bottleneck.conv.weight)
    s4p.eval()
    mdf.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = s4p.extract_feat(x)
        for name in NAMES:  # same features for every expert at init
            out = mdf.extract_feat(x, [name, name])
            for a, b in zip(out, ref):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _untouched(params) -> bool:
    return all(p.grad is None or not p.grad.any() for p in params)


def test_dataset_a_never_touches_head_or_expert_b():
    model = build().train()
    losses = model.loss(torch.randn(2, 3, 32, 32),
                        samples(['loveda', 'loveda']))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert _untouched(model.decode_head['potsdam'].parameters())
    assert not _untouched(model.decode_head['loveda'].parameters())
    # loveda is expert 1 in every block; expert 0 gets nothing
    for blk in model.backbone.blocks:
        assert _untouched(blk.mlp.experts[0].parameters())
        assert blk.mlp.experts[1].weight.grad.abs().sum() > 0


def test_mixed_batch_outputs_ignore_the_other_dataset_weights():
    model = build().eval()
    x = torch.randn(3, 3, 32, 32)
    data = samples(['potsdam', 'loveda', 'potsdam'])
    with torch.no_grad():
        ref = model._forward(x, data)
        for p in model.decode_head['loveda'].parameters():
            p.add_(1.)
        for blk in model.backbone.blocks:
            blk.mlp.experts[1].weight.mul_(3.)
        out = model._forward(x, data)
    torch.testing.assert_close(out['potsdam'], ref['potsdam'], rtol=0, atol=0)
    assert not torch.allclose(out['loveda'], ref['loveda'])


def test_dataset_id_out_of_range_raises():
    model = build().eval()
    data = samples(['potsdam'], key='dataset_id')
    data[0].set_metainfo(dict(dataset_id=-1, img_path='tile_7.png'))
    with pytest.raises(KeyError, match=r'sample 0 \(tile_7.png\): dataset_id '
                       r'-1 out of range'):
        model.predict(torch.randn(1, 3, 32, 32), data)
