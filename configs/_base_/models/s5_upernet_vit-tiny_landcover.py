# Tiny S5 segmentor for the Landsat-7 land-cover tiles (6 bands, 7 classes,
# 32 px): S5ViT-tiny (embed 64, patch 4) + simple feature pyramid + UperNet
# (32 channels, BN), trained from scratch on CPU.
# Per-band mean/std over valid pixels of the scene (tools/band_stats.py).
band_mean = [82.59, 68.58, 68.98, 67.99, 88.85, 60.28]
band_std = [15.76, 17.56, 25.05, 13.81, 25.32, 23.34]
embed_dims = 64
data_preprocessor = dict(
    type='MultiBandSegDataPreProcessor',
    mean=band_mean,
    std=band_std,
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=(32, 32))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='S5ViT',
        arch='tiny',
        img_size=32,
        patch_size=4,
        in_channels=6,
        drop_path_rate=0.1),
    neck=dict(type='SimpleFeaturePyramid', in_channels=embed_dims),
    decode_head=dict(
        type='UPerHead',
        in_channels=[embed_dims] * 4,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=32,
        dropout_ratio=0.1,
        num_classes=7,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
