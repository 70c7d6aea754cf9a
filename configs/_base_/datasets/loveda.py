# LoveDA, S5 protocol: 7 classes (background, building, road, water,
# barren, forest, agriculture); mask 0 (no-data) ignored (255).
# Layout under data_root (MMSeg's; Urban and Rural together):
#   img_dir/{train,val,test}/N.png, ann_dir/{train,val}/N.png,
#   <split>_{urban,rural}.txt base-name lists (ann_file for one domain)
# made from Train.zip, Val.zip, Test.zip by
#   python tools/dataset_converters/loveda.py SRC -o data/loveDA
# or S5's split lists (ann_file, "<image> <mask>" lines).
# Evaluation (S5): mIoU on val with a sliding window, crop 512, stride 256:
# model test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(256, 256)).
# Test labels are withheld: loveda_submit_dataloader reads img_dir/test for
# the server's PNG export.
# Variables carry the dataset prefix so the four dataset bases combine in
# one multi-dataset config (MMEngine forbids one key in two bases). A
# single-dataset config sets e.g.
#   train_dataloader = _base_.loveda_train_dataloader
# Augmentation (S5 MoE-MDF): rescale 0.5-2.0, crop 512, h/v flip, rot90,
# colour jitter, grayscale, blur; the paper gives no values for fine-tuning,
# these are the S4P strong-view values. Crops smaller than 512 (after a
# downscale) are padded by the model's data_preprocessor (size=(512, 512),
# seg_pad_val=255). Every sample carries 'dataset_name' (routing key), kept
# by PackSegInputs through loveda_meta_keys.
loveda_type = 'S5LoveDADataset'
loveda_root = 'data/loveDA'
loveda_crop_size = (512, 512)
loveda_meta_keys = (
    'img_path', 'seg_map_path', 'ori_shape', 'img_shape',
    'pad_shape', 'scale_factor', 'flip', 'flip_direction',
    'reduce_zero_label', 'dataset_name')
loveda_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=loveda_crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRot90', prob=0.5),
    dict(type='MultiBandColorJitter', brightness=0.5, contrast=0.5,
         saturation=0.5, hue=0.25, prob=0.8),
    dict(type='MultiBandGrayscale', prob=0.2),
    dict(type='MultiBandGaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='PackSegInputs', meta_keys=loveda_meta_keys),
]
loveda_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=loveda_meta_keys),
]
# horizontal-flip TTA for `tools/test.py --tta` (SegTTAModel; not part of
# the S5 protocol, which is the sliding window alone)
loveda_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs', meta_keys=loveda_meta_keys)],
        ]),
]
# SeededDataset + a Seeded* sampler: per-sample augmentation seeds, so a
# resumed run sees the augmentations of a straight one (multi-dataset
# configs take the dataset inside: .dataset.dataset).
loveda_train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededDefaultSampler', shuffle=True),
    dataset=dict(type='SeededDataset', dataset=dict(
        type=loveda_type,
        data_root=loveda_root,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=loveda_train_pipeline)))
loveda_val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=loveda_type,
        data_root=loveda_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=loveda_test_pipeline))
loveda_test_dataloader = loveda_val_dataloader
# test split (labels withheld): images only, for the server's PNG export
loveda_submit_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackSegInputs', meta_keys=loveda_meta_keys),
]
loveda_submit_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=loveda_type,
        data_root=loveda_root,
        data_prefix=dict(img_path='img_dir/test'),
        pipeline=loveda_submit_pipeline))
loveda_val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
loveda_test_evaluator = loveda_val_evaluator
