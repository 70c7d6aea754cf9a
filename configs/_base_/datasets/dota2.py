# DOTA-v2.0 (S5_METHOD.md section 5): 18 classes, 1024 x 1024 patches with a
# 200 px gap (tools/dataset_converters/dota_split.py) of train + val for
# training. val: the val patches with their labels, rotated mAP@0.5 VOC07
# 11-point, difficult and patch-cut objects ignored (diff_thr=0); a monitor
# only, the val images are in the training set. test: test-dev patches,
# merged back to full images with rotated NMS and written as the server's
# Task1_<class>.txt files (the paper's DOTA-v2 figure is the server's mAP).
# Layout under data_root: {trainval,val,test}/images/, {trainval,val}/labelTxt/.
dataset_type = 'mmrotate.S5DOTAv2Dataset'
data_root = 'data/split_ss_dota2/'
backend_args = None
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'dataset_name')
train_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmrotate.ConvertBoxType',
         box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.75,
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs', meta_keys=meta_keys),
]
val_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
    dict(type='mmrotate.ConvertBoxType',
         box_type_mapping=dict(gt_bboxes='rbox')),
    dict(type='mmdet.PackDetInputs', meta_keys=meta_keys[:5] +
         ('dataset_name', )),
]
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='mmdet.PackDetInputs', meta_keys=meta_keys[:5] +
         ('dataset_name', )),
]
# SeededDataset + a Seeded* sampler: per-sample augmentation seeds, so a
# resumed run sees the augmentations of a straight one.
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededDefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(type='SeededDataset', dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='trainval/labelTxt/',
        data_prefix=dict(img_path='trainval/images/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val/labelTxt/',
        data_prefix=dict(img_path='val/images/'),
        diff_thr=0,
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='',
        data_prefix=dict(img_path='test/images/'),
        test_mode=True,
        pipeline=test_pipeline))
val_evaluator = dict(type='mmrotate.RotatedVOCMetric', iou_thrs=0.5,
                     eval_mode='11points', prefix='dota')
test_evaluator = dict(
    type='mmrotate.RotatedVOCMetric',
    format_only=True,
    merge_patches=True,
    merge_iou_thr=0.1,
    outfile_prefix='work_dirs/dota2_submission',
    prefix='dota')
