# Pre-training stage of the MDF demo (stands in for S4P): the plain tiny S5
# ViT + UperNet on the 7-class labels of a third set of training tiles
# (splits/mdf/pretrain.txt, disjoint from the lc7 and lc3 tiles), validated
# on the tuning tiles. Its checkpoint initialises every MDF demo run.
_base_ = ['./upernet_vit-tiny_landcover.py']

data_root = 'data/landcover_nc'
model = dict(decode_head=dict(loss_decode=dict(avg_non_ignore=True)))
train_pipeline = [
    dict(type='LoadGeoImageFromFile', expected_bands=6),
    dict(type='LoadGeoAnnotations', label_offset=-1),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRot90', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(  # inside SeededDataset
    data_root=data_root, ann_file='splits/mdf/pretrain.txt',
    pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(data_root=data_root,
                                   ann_file='splits/mdf/tune.txt'))
test_dataloader = val_dataloader
max_iters = 200
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=30),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False, begin=30,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, save_best=None))
