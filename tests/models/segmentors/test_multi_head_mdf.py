"""MultiHeadEncoderDecoder as the MoE-MDF segmentor: per-dataset loss
weights and start iterations, zero-touch of absent datasets, per-dataset
test protocols (flip, slide, resize) against hand-built cases, init from an
S4P checkpoint, config errors."""
import copy

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.transforms import Compose
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import s5_mm  # noqa: F401
from s5_mm.registry import MODELS

NAMES = ['potsdam', 'loveda']
CLASSES = dict(potsdam=5, loveda=7)


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    yield
    hub.runtime_info.pop('iter', None)


def head(num_classes):
    return dict(type='UPerHead', in_channels=[32] * 4, in_index=[0, 1, 2, 3],
                pool_scales=(1, 2), channels=16, dropout_ratio=0.1,
                num_classes=num_classes,
                norm_cfg=dict(type='BN', requires_grad=True),
                align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))


def backbone(num_experts=2):
    return dict(type='S5ViT',
                arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                          out_indices=(0, 1, 1, 1)),
                img_size=32, patch_size=4, drop_path_rate=0.,
                num_experts=num_experts, expert_width=8,
                dataset_names=NAMES if num_experts else None)


def model_cfg(num_experts=2, train_cfg=None, test_cfg=None):
    return dict(type='MultiHeadEncoderDecoder',
                data_preprocessor=dict(type='SegDataPreProcessor',
                                       mean=[0.] * 3, std=[1.] * 3),
                backbone=backbone(num_experts),
                neck=dict(type='SimpleFeaturePyramid', in_channels=32),
                decode_head={n: head(c) for n, c in CLASSES.items()},
                train_cfg=train_cfg or dict(),
                test_cfg=test_cfg or dict(mode='whole'))


def build(num_experts=2, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = MODELS.build(ConfigDict(model_cfg(num_experts, **kwargs)))
    model.init_weights()
    for blk in model.backbone.blocks:  # distinct experts
        for e in getattr(blk.mlp, 'experts', []):
            torch.nn.init.normal_(e.weight, std=0.2)
    return model


def samples(names, h=32, w=32):
    out = []
    for i, n in enumerate(names):
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                        pad_shape=(h, w),
                                        padding_size=[0, 0, 0, 0],
                                        dataset_name=n, img_path=f'{i}.png'))
        g = torch.Generator().manual_seed(i)
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, CLASSES[n], (1, h, w), generator=g))
        out.append(s)
    return out


MIXED = ['loveda', 'potsdam', 'loveda', 'potsdam']


def test_dataset_loss_weights_scale_that_datasets_losses():
    x = torch.randn(4, 3, 32, 32)
    plain = build().eval()
    weighted = build(train_cfg=dict(
        dataset_loss_weights=dict(potsdam=0.25))).eval()
    ref, out = plain.loss(x, samples(MIXED)), weighted.loss(x, samples(MIXED))
    assert set(out) == set(ref) == {
        'potsdam.decode.loss_ce', 'potsdam.decode.acc_seg',
        'loveda.decode.loss_ce', 'loveda.decode.acc_seg'}
    torch.testing.assert_close(out['potsdam.decode.loss_ce'],
                               0.25 * ref['potsdam.decode.loss_ce'])
    torch.testing.assert_close(out['loveda.decode.loss_ce'],
                               ref['loveda.decode.loss_ce'])
    torch.testing.assert_close(out['potsdam.decode.acc_seg'],
                               ref['potsdam.decode.acc_seg'])


def test_dataset_start_iteration_leaves_the_dataset_out_until_then():
    model = build(train_cfg=dict(dataset_start_iters=dict(loveda=10))).eval()
    x = torch.randn(4, 3, 32, 32)
    data = samples(MIXED)
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 9)
    early = model.loss(x, data)
    assert set(early) == {'potsdam.decode.loss_ce', 'potsdam.decode.acc_seg'}
    # potsdam's loss is that of the potsdam samples alone
    ref = model.loss(x[[1, 3]], [data[1], data[3]])
    torch.testing.assert_close(early['potsdam.decode.loss_ce'],
                               ref['potsdam.decode.loss_ce'])
    hub.update_info('iter', 10)
    assert 'loveda.decode.loss_ce' in model.loss(x, data)
    # a batch of only not-yet-started samples: a zero loss with a gradient
    hub.update_info('iter', 0)
    only = model.loss(x[[0, 2]], [data[0], data[2]])
    assert list(only) == ['loss_zero'] and only['loss_zero'].item() == 0
    only['loss_zero'].backward()
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() == 0


def _grad(p):
    return None if p.grad is None else float(p.grad.abs().sum())


def test_dataset_a_never_reaches_expert_or_head_b():
    model = build().train()
    x = torch.randn(4, 3, 32, 32)
    losses = model.loss(x, samples(MIXED))
    # backward of potsdam's loss alone, from a mixed batch
    losses['potsdam.decode.loss_ce'].backward()
    mlp = model.backbone.blocks[0].mlp
    assert _grad(mlp.experts[0].weight) > 0  # potsdam's expert
    assert _grad(mlp.experts[1].weight) in (None, 0.)
    assert _grad(model.decode_head['potsdam'].conv_seg.weight) > 0
    assert _grad(model.decode_head['loveda'].conv_seg.weight) in (None, 0.)
    assert _grad(mlp.fc2_shared.weight) > 0


def test_touch_unused_params_gives_zero_grads_and_same_loss():
    x = torch.randn(2, 3, 32, 32)
    data = samples(['potsdam', 'potsdam'])
    plain = build().train()
    touched = build(train_cfg=dict(touch_unused_params=True)).train()
    torch.manual_seed(1)
    ref = plain.loss(x, data)
    torch.manual_seed(1)
    out = touched.loss(x, data)
    assert set(out) == set(ref)  # nothing added to the log
    torch.testing.assert_close(out['potsdam.decode.loss_ce'],
                               ref['potsdam.decode.loss_ce'])
    out['potsdam.decode.loss_ce'].backward()
    absent = touched.dataset_parameters('loveda')
    # loveda's decode head + one expert per block
    assert len(absent) == len(list(
        touched.decode_head['loveda'].parameters())) + 2 * 2
    assert all(p.grad is not None and p.grad.abs().sum() == 0
               for p in absent)
    # every trainable parameter got a gradient: DDP can run a static graph
    assert all(p.grad is not None for p in touched.parameters()
               if p.requires_grad)


# ----------------------------------------------------------------- test
def ramp_encode_decode(inputs, batch_img_metas):
    """Hand-checkable logits: class c = c * x-ramp + channel 0 + crop mean
    (the ramp makes flips matter, the mean makes windows matter)."""
    n, _, h, w = inputs.shape
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w)
    c = torch.arange(7, dtype=inputs.dtype).view(1, 7, 1, 1)
    return c * ramp + inputs[:, :1] + inputs.mean(dim=(1, 2, 3),
                                                  keepdim=True)


def test_per_dataset_protocols_slide_and_flip_against_hand_built():
    test_cfg = dict(mode='whole', datasets=dict(
        loveda=dict(mode='slide', crop_size=(32, 32), stride=(16, 16)),
        potsdam=dict(flip=True)))
    model = build(test_cfg=test_cfg).eval()
    model.encode_decode = ramp_encode_decode
    x = torch.randn(2, 3, 48, 48)
    preds = model.predict(x, samples(['loveda', 'potsdam'], 48, 48))
    # slide 32 / 16 on 48: windows at 0 and 16 in each direction
    acc = torch.zeros(1, 7, 48, 48)
    cnt = torch.zeros(1, 1, 48, 48)
    for y in (0, 16):
        for x0 in (0, 16):
            crop = x[:1, :, y:y + 32, x0:x0 + 32]
            acc[..., y:y + 32, x0:x0 + 32] += ramp_encode_decode(crop, None)
            cnt[..., y:y + 32, x0:x0 + 32] += 1
    torch.testing.assert_close(preds[0].seg_logits.data, (acc / cnt)[0])
    # whole + horizontal flip: mean of the two softmaxes
    img = x[1:]
    p = ramp_encode_decode(img, None).softmax(1) + ramp_encode_decode(
        img.flip(3), None).softmax(1).flip(3)
    torch.testing.assert_close(preds[1].seg_logits.data.softmax(0),
                               (p / 2)[0])
    assert not torch.allclose(  # the flip changed the answer
        preds[1].seg_logits.data.softmax(0),
        ramp_encode_decode(img, None).softmax(1)[0])
    assert model.test_cfg == ConfigDict(test_cfg)  # restored after predict


def test_resize_protocol_pipeline_then_upsample(tmp_path):
    """OpenEarthMap: the image is resized to the model size in the test
    pipeline, the label stays at full size, the logits are upsampled to
    it."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    mmcv.imwrite(img, str(tmp_path / 'a.png'))
    mmcv.imwrite(rng.integers(0, 7, (40, 56), dtype=np.uint8),
                 str(tmp_path / 'a_gt.png'))
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs', meta_keys=(
            'img_path', 'seg_map_path', 'ori_shape', 'img_shape',
            'pad_shape', 'scale_factor', 'flip', 'flip_direction',
            'reduce_zero_label', 'dataset_name')),
    ])
    data = pipeline(dict(img_path=str(tmp_path / 'a.png'),
                         seg_map_path=str(tmp_path / 'a_gt.png'),
                         reduce_zero_label=False, seg_fields=[],
                         dataset_name='loveda'))
    model = build().eval()
    model.encode_decode = ramp_encode_decode
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))
    assert batch['inputs'].shape[-2:] == (32, 32)
    pred = model.predict(**batch)[0]
    assert pred.gt_sem_seg.data.shape[-2:] == (40, 56)
    ref = F.interpolate(ramp_encode_decode(batch['inputs'], None),
                        size=(40, 56), mode='bilinear', align_corners=False)
    torch.testing.assert_close(pred.seg_logits.data, ref[0])


def test_real_model_per_dataset_slide_equals_global_slide():
    slide = dict(mode='slide', crop_size=(32, 32), stride=(16, 16))
    per = build(test_cfg=dict(mode='whole', datasets=dict(loveda=slide)))
    glob = build(test_cfg=slide)
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        a = per.eval().predict(x, samples(['loveda'], 48, 48))[0]
        b = glob.eval().predict(x, samples(['loveda'], 48, 48))[0]
    torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data)


# ----------------------------------------------------------------- init
def s4p_cfg():
    seg = model_cfg(num_experts=0)
    seg.update(type='EncoderDecoder', decode_head=head(16))
    return dict(type='S4PSegmentor', segmentor=seg,
                semi_train_cfg=dict(teacher='ema'))


@pytest.mark.parametrize('branch', ['student', 'teacher'])
def test_init_from_s4p_checkpoint_gives_s4p_decoder_features(tmp_path,
                                                             branch):
    torch.manual_seed(3)
    s4p = MODELS.build(ConfigDict(s4p_cfg()))
    s4p.init_weights()
    with torch.no_grad():  # a teacher that differs from the student
        for p in s4p.teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ckpt = tmp_path / 's4p.pth'
    torch.save(dict(state_dict=s4p.state_dict(), meta=dict()), ckpt)
    ref_model = getattr(s4p, branch).eval()

    mdf = build(seed=7, train_cfg=dict(s4p_branch=branch))
    conv_seg_before = {n: h.conv_seg.weight.clone()
                       for n, h in mdf.decode_head.items()}
    load_checkpoint(mdf, str(ckpt), map_location='cpu', strict=False)
    mdf.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref_feats = ref_model.extract_feat(x)
        ref_dec = ref_model.decode_head._forward_feature(ref_feats)
        for name in NAMES:
            feats = mdf.extract_feat(x, [name, name])
            for a, b in zip(feats, ref_feats):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
            dec = mdf.decode_head[name]._forward_feature(feats)
            torch.testing.assert_close(dec, ref_dec, rtol=1e-5, atol=1e-5)
            # classifiers are new (class counts differ from the 16 of S4P)
            torch.testing.assert_close(mdf.decode_head[name].conv_seg.weight,
                                       conv_seg_before[name])


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize('train_cfg,test_cfg,error,match', [
    (dict(dataset_loss_weights=dict(vaihingen=1.)), None, ValueError,
     r"dataset_loss_weights names datasets \['vaihingen'\] that have no "
     'head'),
    (dict(dataset_start_iters=dict(loveda=-1)), None, ValueError,
     r"dataset_start_iters\['loveda'\] must be an int >= 0"),
    (None, dict(mode='whole', datasets=dict(oem=dict(flip=True))),
     ValueError, r"test_cfg.datasets names datasets \['oem'\]"),
    (None, dict(mode='whole', datasets=dict(loveda=dict(mode='slide'))),
     KeyError, r"test_cfg.datasets\['loveda'\]: mode='slide' needs "
     'crop_size'),
    (None, dict(mode='resize'), ValueError, 'Resize before LoadAnnotations'),
    (None, dict(mode='whole', flip='diagonal'), ValueError,
     'test_cfg.flip must be'),
])
def test_config_errors_name_the_dataset(train_cfg, test_cfg, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(ConfigDict(model_cfg(train_cfg=train_cfg,
                                          test_cfg=test_cfg)))


def test_sample_of_a_dataset_without_head_is_named():
    model = build().eval()
    data = samples(['potsdam'])
    data[0].set_metainfo(dict(dataset_name='vaihingen'))
    with pytest.raises(KeyError, match="'vaihingen'"):
        model.loss(torch.randn(1, 3, 32, 32), copy.deepcopy(data))
