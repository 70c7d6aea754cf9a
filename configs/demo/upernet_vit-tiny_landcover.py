# Foundation demo: a tiny S5 ViT + simple feature pyramid + UperNet trained
# from scratch on the Landsat-7 land-cover tiles (6 bands, 7 classes), CPU.
_base_ = ['../_base_/datasets/landcover.py', '../_base_/default_runtime.py']

embed_dims = 64
data_preprocessor = dict(
    type='MultiBandSegDataPreProcessor',
    mean={{_base_.band_mean}},
    std={{_base_.band_std}},
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

max_iters = 1500
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(
        pos_embed=dict(decay_mult=0.), norm=dict(decay_mult=0.))))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False, begin=100,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500,
                    max_keep_ckpts=2, save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # bands 3,2,1 (NIR, red, green): the usual false-colour composite
    visualization=dict(type='GeoSegVisualizationHook', rgb_bands=(3, 2, 1)))
randomness = dict(seed=0)
