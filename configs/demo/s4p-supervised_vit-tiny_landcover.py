# Supervised-only baseline of the S4P demo: the same labelled tiles, weak
# pipeline, model, schedule and labelled images per step as
# s4p_vit-tiny_landcover.py, without unlabelled data.
_base_ = [
    '../_base_/models/s5_upernet_vit-tiny_landcover.py',
    '../_base_/datasets/landcover.py',
    '../_base_/schedules/schedule_demo_1k.py', '../_base_/default_runtime.py'
]
# tools/run_s4p_demo.py writes the split lists (splits/<regime>/).
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
    dataset=dict(dataset=dict(  # the dataset in the base's SeededDataset
        ann_file=labelled_list,
        data_prefix=dict(seg_map_path=label_dir),
        pipeline=train_pipeline)))
randomness = dict(seed=0)
# the total batch of the one process this CPU demo runs in (paper configs:
# their 8-GPU total, docs/scaling.md)
auto_scale_lr = dict(enable=False, base_batch_size=labelled_per_batch)
