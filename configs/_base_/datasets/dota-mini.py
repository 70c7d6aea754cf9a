# CPU demo data (tools/run_det_demo.py): 512 x 512 patches, gap 128, of the
# shared DOTA images (../shared/data/rotated/dota_mini) written by
# tools/dataset_converters/dota_split.py: train/ from P0003 + P0706, heldout/
# from P0004. Training on random 256 crops at native resolution (small
# objects: vehicles and ships 15-40 px across), h/v/diagonal flips; the four
# classes present in the images. Evaluation on whole patches, rotated mAP at
# IoU 0.5, 0.3 and 0.1, difficult and patch-cut objects ignored.
dataset_type = 'mmrotate.S5DOTADataset'
data_root = 'data/dota_mini_512/'
classes = ('small-vehicle', 'large-vehicle', 'ship', 'harbor')
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'dataset_name')
train_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmrotate.ConvertBoxType',
         box_type_mapping=dict(gt_bboxes='rbox')),
    # keeps boxes whose centre is in the crop, whole
    dict(type='mmdet.RandomCrop', crop_size=(256, 256),
         allow_negative_crop=False, bbox_clip_border=False),
    dict(type='mmdet.RandomFlip', prob=0.75,
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    # native resolution; sets the scale_factor the RoI head reads
    dict(type='mmdet.Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmrotate.ConvertBoxType',
         box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.PackDetInputs', meta_keys=meta_keys[:5] +
         ('dataset_name', )),
]
# SeededDataset + a Seeded* sampler: per-sample augmentation seeds, so a
# resumed run sees the augmentations of a straight one.
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='SeededDefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(type='SeededDataset', dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train/labelTxt/',
        data_prefix=dict(img_path='train/images/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='heldout/labelTxt/',
        data_prefix=dict(img_path='heldout/images/'),
        metainfo=dict(classes=classes),
        diff_thr=0,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmrotate.RotatedVOCMetric',
                     iou_thrs=[0.5, 0.3, 0.1], prefix='dota')
test_evaluator = val_evaluator
