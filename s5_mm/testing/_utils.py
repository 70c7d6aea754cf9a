"""Tiny models and toy data for the test suite (as ``mmrotate.testing``).

Each factory is seeded and built the same way on every call, so tests can
assert golden values on what it returns.
"""
from pathlib import Path

import torch
from mmengine.model import BaseModule

from s5_mm.registry import MODELS

TINY_VIT_DIMS = 32


@MODELS.register_module()
class TinyIdentityBackbone(BaseModule):
    """Features = input: with an identity 1x1 classifier, logits = pixels."""

    def forward(self, x):
        return (x, )


def _build(cfg, seed):
    from mmengine.registry import init_default_scope
    from mmseg.utils import register_all_modules

    import s5_mm  # noqa: F401  (registers the package's modules)
    register_all_modules(init_default_scope=False)
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    return MODELS.build(cfg)


def tiny_segmentor_cfg(in_channels=3, num_classes=5, mean=127.0, std=60.0,
                       downsample=False):
    """A 2-stage UNet plus an FCN head (4 channels throughout).

    Without ``downsample`` it is fully convolutional and translation
    equivariant with a 4 px receptive-field radius, so tiled and whole-image
    inference can be compared exactly; with it, the UNet max-pools once.
    """
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
            dec_num_convs=(1, ), downsamples=(downsample, ),
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
    """:func:`tiny_segmentor_cfg` built with unit-scale random weights, in
    eval mode."""
    model = _build(tiny_segmentor_cfg(in_channels, num_classes, mean, std),
                   seed)
    # Unit-scale weights: logits far apart, so argmax is not decided by
    # float rounding when merge orders differ.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 1.0 / p[0].numel() ** 0.5)
    model.decode_head.conv_seg.weight.data.mul_(4)
    return model.eval()


def save_segmentor_checkpoint(model_cfg, path, seed=0):
    """Build ``model_cfg`` (default init after ``torch.manual_seed(seed)``)
    and save it as tools/ expect a checkpoint: ``state_dict`` plus
    ``meta.dataset_meta`` with classes ``c0, c1, ...`` and a palette."""
    model = _build(model_cfg, seed)
    n = model_cfg['decode_head']['num_classes']
    meta = dict(dataset_meta=dict(
        classes=[f'c{i}' for i in range(n)],
        palette=[[40 * i, 0, 255 - 40 * i] for i in range(n)]))
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)


def identity_segmentor_cfg(num_classes=2):
    """EncoderDecoder whose backbone passes the image through and whose
    head is a single 1x1 conv: with an identity conv the ``num_classes``
    input bands are the logits."""
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=dict(type='TinyIdentityBackbone'),
        decode_head=dict(
            type='FCNHead', in_channels=num_classes, channels=num_classes,
            num_convs=0, concat_input=False, dropout_ratio=0.0,
            num_classes=num_classes, norm_cfg=None, in_index=-1,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def tiny_vit_arch(num_layers=2, out_indices=(0, 1)):
    """A 32-dim, 2-head ViT arch for ``S5ViT(arch=...)``."""
    return dict(embed_dims=TINY_VIT_DIMS, num_layers=num_layers,
                num_heads=2, out_indices=out_indices)


def build_tiny_vit(arch=None, img_size=32, patch_size=4, seed=0, **kwargs):
    """``S5ViT`` (default arch :func:`tiny_vit_arch`, no drop path)
    initialised after ``torch.manual_seed(seed)``, in eval mode."""
    from s5_mm.models.backbones import S5ViT
    kwargs.setdefault('drop_path_rate', 0.)
    torch.manual_seed(seed)
    model = S5ViT(arch=arch or tiny_vit_arch(), img_size=img_size,
                  patch_size=patch_size, **kwargs)
    model.init_weights()
    return model.eval()


def tiny_uper_head_cfg(num_classes):
    """UPerHead over four 32-channel levels (the tiny ViT + SimpleFPN)."""
    return dict(type='UPerHead',
                in_channels=[TINY_VIT_DIMS] * 4,
                in_index=[0, 1, 2, 3],
                pool_scales=(1, 2),
                channels=16,
                dropout_ratio=0.1,
                num_classes=num_classes,
                norm_cfg=dict(type='BN', requires_grad=True),
                align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))


def tiny_mdf_segmentor_cfg(num_classes, num_experts=2):
    """MultiHeadEncoderDecoder on a 2-block MoE ViT: one UPerHead per
    dataset, ``num_classes`` maps dataset name -> classes (its order is the
    experts' order); ``num_experts=0`` gives a plain ViT."""
    names = list(num_classes)
    return dict(type='MultiHeadEncoderDecoder',
                data_preprocessor=dict(type='SegDataPreProcessor',
                                       mean=[0.] * 3,
                                       std=[1.] * 3),
                backbone=dict(type='S5ViT',
                              arch=tiny_vit_arch(out_indices=(0, 1, 1, 1)),
                              img_size=32,
                              patch_size=4,
                              drop_path_rate=0.,
                              num_experts=num_experts,
                              expert_width=8,
                              dataset_names=names if num_experts else None),
                neck=dict(type='SimpleFeaturePyramid',
                          in_channels=TINY_VIT_DIMS),
                decode_head={
                    name: tiny_uper_head_cfg(n)
                    for name, n in num_classes.items()
                },
                train_cfg=dict(),
                test_cfg=dict(mode='whole'))


def build_tiny_mdf_segmentor(num_classes, num_experts=2, seed=0):
    """:func:`tiny_mdf_segmentor_cfg` initialised after
    ``torch.manual_seed(seed)``, its experts made distinct (N(0, 0.2))."""
    from mmengine.config import ConfigDict

    import s5_mm.models.segmentors.multi_head  # noqa: F401  (registers it)
    model = _build(ConfigDict(tiny_mdf_segmentor_cfg(num_classes,
                                                     num_experts)), seed)
    model.init_weights()
    for blk in model.backbone.blocks:
        for e in getattr(blk.mlp, 'experts', []):
            torch.nn.init.normal_(e.weight, std=0.2)
    return model


def toy_label(h=20, w=20):
    """Classes 0 / 1 / 2 in three blocks: 84 / 156 / 160 of a 20x20 map."""
    import numpy as np
    label = np.zeros((h, w), np.uint8)
    label[:, 7:] = 1
    label[12:, :] = 2
    return label


def make_toy_seg_data(root, num_labelled=4, num_unlabelled=6, seed=0):
    """Write a toy RGB segmentation set under ``root``: ``img/l{i}.png``
    with ``ann/l{i}.png`` (20x20, :func:`toy_label` plus noise in the
    image) and unlabelled ``unl/u{i}.png`` of (12 + 2i) x 20 pixels.
    Returns ``root``."""
    import cv2
    import numpy as np
    root = Path(root)
    rng = np.random.default_rng(seed)
    for sub in ('img', 'ann', 'unl'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(num_labelled):
        label = toy_label()
        img = (label[..., None] * 80 + rng.integers(0, 40, (20, 20, 3)))
        cv2.imwrite(str(root / 'img' / f'l{i}.png'), img.astype(np.uint8))
        cv2.imwrite(str(root / 'ann' / f'l{i}.png'), label)
    for i in range(num_unlabelled):
        img = rng.integers(0, 255, (12 + 2 * i, 20, 3)).astype(np.uint8)
        cv2.imwrite(str(root / 'unl' / f'u{i}.png'), img)
    return root


S4P_BRANCHES = ['sup', 'unsup_teacher', 'unsup_student']


def toy_s4p_pipelines(geometric, strong=()):
    """(labelled, unlabelled) pipelines of the toy S4P runs: load, the
    ``geometric`` transforms on both, ``mmdet.MultiBranch`` packing (the
    unlabelled crop with its padding mask as weak and, after ``strong``,
    as strong view)."""
    sup = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
           *geometric,
           dict(type='mmdet.MultiBranch', branch_field=S4P_BRANCHES,
                sup=[dict(type='PackSegInputs')])]
    unsup = [dict(type='LoadImageFromFile'), dict(type='AddPaddingMask'),
             *geometric,
             dict(type='mmdet.MultiBranch', branch_field=S4P_BRANCHES,
                  unsup_teacher=[dict(type='PackSegInputs')],
                  unsup_student=[*strong, dict(type='PackSegInputs')])]
    return sup, unsup


def toy_s4p_random_pipelines():
    """:func:`toy_s4p_pipelines` with random augmentation: a 16 px random
    crop and a flip on both, photometric distortion on the strong view."""
    return toy_s4p_pipelines(
        [dict(type='RandomCrop', crop_size=(16, 16)),
         dict(type='RandomFlip', prob=0.5)],
        strong=[dict(type='PhotoMetricDistortion')])


def toy_iter_schedule(max_iters, total_iters, ckpt_interval):
    """Runner keys of the toy iteration-based runs: AdamW at 0.01, cosine
    over ``total_iters``, a checkpoint every ``ckpt_interval`` iterations,
    a log line every iteration."""
    return dict(
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=total_iters,
                              by_epoch=False, begin=0, end=total_iters)],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=ckpt_interval,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False))
