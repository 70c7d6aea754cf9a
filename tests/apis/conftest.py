"""Tiny randomly initialised MMSeg segmentors for the geo tests.

A 2-stage UNet without downsampling plus an FCN head: fully convolutional,
translation-equivariant, receptive-field radius 4 px, so tiled and
whole-image inference can be compared exactly.
"""
import pytest
import torch


def tiny_segmentor_cfg(in_channels=3, num_classes=5, mean=127.0, std=60.0):
    norm = dict(type='BN', requires_grad=True)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            # mmengine's preprocessor takes only 1 or 3 means
            type='SegDataPreProcessor' if in_channels in (1, 3) else
            'MultiBandSegDataPreProcessor', mean=[mean] * in_channels,
            std=[std] * in_channels, bgr_to_rgb=False, pad_val=0,
            seg_pad_val=255),
        backbone=dict(
            type='UNet', in_channels=in_channels, base_channels=4,
            num_stages=2, strides=(1, 1), enc_num_convs=(1, 1),
            dec_num_convs=(1, ), downsamples=(False, ),
            enc_dilations=(1, 1), dec_dilations=(1, ), norm_cfg=norm),
        decode_head=dict(
            type='FCNHead', in_channels=4, in_index=-1, channels=4,
            num_convs=1, concat_input=False, dropout_ratio=0.0,
            num_classes=num_classes, norm_cfg=norm, align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def build_tiny_segmentor(in_channels=3, num_classes=5, mean=127.0, std=60.0,
                         seed=0):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import s5_mm  # noqa: F401  (MultiBandSegDataPreProcessor)
    register_all_modules(init_default_scope=False)
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(tiny_segmentor_cfg(in_channels, num_classes, mean,
                                            std))
    # Unit-scale weights: logits far apart, so argmax is not decided by
    # float rounding when merge orders differ.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 1.0 / p[0].numel() ** 0.5)
    model.decode_head.conv_seg.weight.data.mul_(4)
    return model.eval()


@pytest.fixture
def tiny_segmentor():
    return build_tiny_segmentor


@pytest.fixture
def tiny_cfg():
    return tiny_segmentor_cfg
