# OpenEarthMap, S5 protocol: 9 classes incl. 'unknown' (id 0; bareland,
# rangeland, developed space, road, tree, water, agriculture land, building),
# xBD tiles removed.
# Layout under data_root (MMSeg's):
#   img_dir/{train,val,test}/<city>_<n>.png, ann_dir/... label ids 0..8,
#   xbd_excluded.txt (tiles the converter left out)
# made from the release zip or folder by
#   python tools/dataset_converters/openearthmap.py SRC -o data/openearthmap
# or S5's split lists (ann_file, "<image> <mask>" lines) with
# exclude_list='xbd_files.csv' to drop the xBD tiles.
# Evaluation (S5): mIoU; each image resized to 512 x 512, predicted, and the
# logits upsampled to the original size (the test pipeline's Resize before
# LoadAnnotations keeps the label at full size; MMSeg's postprocess resizes
# to ori_shape); model test_cfg mode='whole'.
# Variables carry the dataset prefix so the four dataset bases combine in
# one multi-dataset config (MMEngine forbids one key in two bases). A
# single-dataset config sets e.g.
#   train_dataloader = _base_.openearthmap_train_dataloader
# Augmentation (S5 MoE-MDF): rescale 0.5-2.0, crop 512, h/v flip, rot90,
# colour jitter, grayscale, blur; the paper gives no values for fine-tuning,
# these are the S4P strong-view values. Crops smaller than 512 (after a
# downscale) are padded by the model's data_preprocessor (size=(512, 512),
# seg_pad_val=255). Every sample carries 'dataset_name' (routing key), kept
# by PackSegInputs through openearthmap_meta_keys.
openearthmap_type = 'OpenEarthMapDataset'
openearthmap_root = 'data/openearthmap'
openearthmap_crop_size = (512, 512)
openearthmap_meta_keys = (
    'img_path', 'seg_map_path', 'ori_shape', 'img_shape',
    'pad_shape', 'scale_factor', 'flip', 'flip_direction',
    'reduce_zero_label', 'dataset_name')
openearthmap_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=openearthmap_crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRot90', prob=0.5),
    dict(type='MultiBandColorJitter', brightness=0.5, contrast=0.5,
         saturation=0.5, hue=0.25, prob=0.8),
    dict(type='MultiBandGrayscale', prob=0.2),
    dict(type='MultiBandGaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='PackSegInputs', meta_keys=openearthmap_meta_keys),
]
# resize to 512 for the forward pass; the label stays at full size
openearthmap_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=openearthmap_crop_size, keep_ratio=False),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=openearthmap_meta_keys),
]
# horizontal-flip TTA for `tools/test.py --tta` (SegTTAModel; not part of
# the S5 protocol), after the same resize
openearthmap_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=openearthmap_crop_size,
                  keep_ratio=False)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs', meta_keys=openearthmap_meta_keys)],
        ]),
]
# SeededDataset + a Seeded* sampler: per-sample augmentation seeds, so a
# resumed run sees the augmentations of a straight one (multi-dataset
# configs take the dataset inside: .dataset.dataset).
openearthmap_train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededDefaultSampler', shuffle=True),
    dataset=dict(type='SeededDataset', dataset=dict(
        type=openearthmap_type,
        data_root=openearthmap_root,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=openearthmap_train_pipeline)))
openearthmap_val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=openearthmap_type,
        data_root=openearthmap_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=openearthmap_test_pipeline))
# OEM's test labels: where the release has them, convert the test split
# and point a copy of this loader at img_dir/test, ann_dir/test.
openearthmap_test_dataloader = openearthmap_val_dataloader
openearthmap_val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
openearthmap_test_evaluator = openearthmap_val_evaluator
