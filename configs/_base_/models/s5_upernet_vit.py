# S5 segmentor (S5_METHOD.md section 3): S5ViT-B + simple feature pyramid +
# UperNet (256 ch, pool scales 1/2/3/6, dropout 0.1), 16 iSAID classes, no
# auxiliary head: 103.2 M parameters (ViT-L 327.4 M, ViT-H 663.4 M with
# `model = dict(backbone=dict(arch='l'), neck=dict(in_channels=1024),
#               decode_head=dict(in_channels=[1024] * 4))`).
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='S5ViT',
        arch='b',
        img_size=512,
        patch_size=16,
        in_channels=3,
        drop_path_rate=0.1,
        qkv_bias=True,
        with_cp=False),
    neck=dict(type='SimpleFeaturePyramid', in_channels=768),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=256,
        dropout_ratio=0.1,
        num_classes=16,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
