# DIOR-R (S5_METHOD.md section 5): 20 classes, 800 x 800 images resized to
# S5's 1024 input; trained on train + val (the release's trainval images),
# scored on test by rotated mAP at IoU 0.5, VOC07 11-point, difficult objects
# ignored (diff_thr=0). Release layout under data_root: JPEGImages-trainval/,
# JPEGImages-test/, "Annotations/Oriented Bounding Boxes/", ImageSets/Main/.
# Types are scoped ('mmrotate.*', 'mmdet.*') so the file builds in any scope.
dataset_type = 'mmrotate.S5DIORDataset'
data_root = 'data/DIOR/'
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
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile', backend_args=backend_args),
    dict(type='mmdet.Resize', scale=(1024, 1024), keep_ratio=True),
    # after Resize: the boxes stay in original pixels, as the predictions
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
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededDefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(type='SeededDataset', dataset=dict(
        type='mmdet.ConcatDataset',
        datasets=[
            dict(type=dataset_type, data_root=data_root,
                 ann_file=f'ImageSets/Main/{split}.txt',
                 data_prefix=dict(img_path='JPEGImages-trainval'),
                 filter_cfg=dict(filter_empty_gt=True),
                 pipeline=train_pipeline, backend_args=backend_args)
            for split in ('train', 'val')
        ])))
val_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Main/test.txt',
        data_prefix=dict(img_path='JPEGImages-test'),
        diff_thr=0,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmrotate.RotatedVOCMetric', iou_thrs=0.5,
                     eval_mode='11points', prefix='dior')
test_evaluator = val_evaluator
