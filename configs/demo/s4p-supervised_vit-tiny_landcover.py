# Supervised-only baseline of the S4P demo: the same labelled tiles, weak
# pipeline, model, schedule and labelled images per step as
# s4p_vit-tiny_landcover.py, without unlabelled data.
_base_ = ['./vit-tiny_upernet_landcover.py']

data_root = 'data/landcover_nc'
labelled_list = 'splits/tiles/labelled.txt'
label_dir = 'ann_dir/train'
labelled_per_batch = 8
# CE over labelled pixels only, as in the S4P demo config.
model = dict(decode_head=dict(loss_decode=dict(avg_non_ignore=True)))
train_pipeline = [
    dict(type='LoadGeoImageFromFile', expected_bands=6),
    dict(type='LoadGeoAnnotations', label_offset=-1),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRot90', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=labelled_per_batch,
    dataset=dict(
        data_root=data_root,
        ann_file=labelled_list,
        data_prefix=dict(img_path='img_dir/train', seg_map_path=label_dir),
        pipeline=train_pipeline))
# The S4P demo's schedule (about 3 minutes per run on one core).
max_iters = 1000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False, begin=100,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, save_best=None))
