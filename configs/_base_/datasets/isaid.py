# iSAID, S5 crops: the 512 x 512 quadrants of the 1024 x 1024 patches
# (img_dir/<split>/X.png, ann_dir/<split>/X_instance_color_RGB.png with class
# ids). For MMSeg's converter output (896 patches) set quadrants=False.
# Validation: mIoU over the 15 foreground classes on whole 512 crops.
isaid_type = 'S5iSAIDDataset'
isaid_root = 'data/iSAID'
crop_size = (512, 512)
isaid_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CropWindow'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
isaid_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CropWindow'),
    dict(type='PackSegInputs'),
]
# horizontal-flip TTA for `tools/test.py --tta` (SegTTAModel), on the
# same crop
isaid_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='LoadAnnotations')],
            [dict(type='CropWindow')],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='PackSegInputs')],
        ]),
]
# SeededDataset + a Seeded* sampler: per-sample augmentation seeds, so a
# resumed run sees the augmentations of a straight one.
train_dataloader = dict(
    batch_size=12,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='SeededInfiniteSampler', shuffle=True),
    dataset=dict(type='SeededDataset', dataset=dict(
        type=isaid_type,
        data_root=isaid_root,
        quadrants=True,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=isaid_train_pipeline)))
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=isaid_type,
        data_root=isaid_root,
        quadrants=True,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=isaid_test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='SubsetIoUMetric', exclude_classes=('background', ),
    iou_metrics=['mIoU'])
test_evaluator = val_evaluator
