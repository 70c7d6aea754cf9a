# Landsat-7 land-cover tiles (6 bands, 7 classes), prepared by
# tools/dataset_converters/prepare_landcover.py. The band statistics are in
# the model's data_preprocessor (../models/s5_upernet_vit-tiny_landcover.py).
dataset_type = 'LandcoverNCDataset'
data_root = 'data/landcover_nc'
crop_size = (32, 32)
train_pipeline = [
    dict(type='LoadGeoImageFromFile', expected_bands=6),
    dict(type='LoadGeoAnnotations', label_offset=-1),
    dict(type='GeoRandomFlip', prob=0.5, direction='horizontal'),
    dict(type='GeoRandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackSegInputs'),
]
# optional=True: mmseg.apis.inference_model runs this pipeline on an image
# path alone (no label)
test_pipeline = [
    dict(type='LoadGeoImageFromFile', expected_bands=6),
    dict(type='LoadGeoAnnotations', label_offset=-1, optional=True),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadGeoImageFromFile', expected_bands=6),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='GeoRandomFlip', prob=0., direction='horizontal'),
            dict(type='GeoRandomFlip', prob=1., direction='horizontal')
        ], [dict(type='LoadGeoAnnotations', label_offset=-1)],
                    [dict(type='PackSegInputs')]])
]
# SeededDataset + a Seeded* sampler: per-sample augmentation seeds, so a
# resumed run sees the augmentations of a straight one.
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='SeededInfiniteSampler', shuffle=True),
    dataset=dict(type='SeededDataset', dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU', 'mFscore'])
test_evaluator = val_evaluator
