# MoE-MDF segmentor (S5_METHOD.md sections 3-4): one S5ViT-B with MoE FFNs
# (4 experts, p = 256) shared by Vaihingen, Potsdam, LoveDA and OpenEarthMap,
# one simple feature pyramid, one UperNet + classifier per dataset:
# 160.4 M parameters (p = 128: 146.2 M, p = 512: 188.7 M; num_experts=0:
# plain multi-dataset fine-tuning, 132.1 M). Samples are routed by
# metainfo['dataset_name'] (list it in PackSegInputs(meta_keys=...)).
norm_cfg = dict(type='SyncBN', requires_grad=True)
dataset_names = ['vaihingen', 'potsdam', 'loveda', 'openearthmap']
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))


def _uper_head(num_classes, in_channels=768):
    return dict(
        type='UPerHead',
        in_channels=[in_channels] * 4,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))


model = dict(
    type='MultiHeadEncoderDecoder',
    data_preprocessor=data_preprocessor,
    dataset_names=dataset_names,
    backbone=dict(
        type='S5ViT',
        arch='b',
        img_size=512,
        patch_size=16,
        in_channels=3,
        drop_path_rate=0.1,
        qkv_bias=True,
        with_cp=False,
        num_experts=4,
        expert_width=256,
        dataset_names=dataset_names),
    neck=dict(type='SimpleFeaturePyramid', in_channels=768),
    decode_head=dict(
        vaihingen=_uper_head(5),
        potsdam=_uper_head(5),
        loveda=_uper_head(7),
        openearthmap=_uper_head(9)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
del _uper_head
