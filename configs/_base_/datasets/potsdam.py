# ISPRS Potsdam, S5 protocol: 5 classes (impervious surface, building, low
# vegetation, tree, car), clutter and the eroded boundary ignored (255).
# Layout under data_root (MMSeg's):
#   img_dir/{train,val}/<i>_<j>_<x0>_<y0>_<x1>_<y1>.png   RGB crops
#   ann_dir/{train,val}/<i>_<j>_<x0>_<y0>_<x1>_<y1>.png   ids 0 undefined, 1..6
# made from 2_Ortho_RGB.zip and 5_Labels_all_noBoundary.zip by
#   python tools/dataset_converters/potsdam.py SRC -o data/potsdam
#       [--clip-size 512 --stride 256]
# or S5's split lists (ann_file, "<image> <mask>" lines).
# Evaluation (S5): mF1 (IoUMetric's mFscore) on whole 512 crops with
# horizontal-flip averaging. configs/mdf and configs/sdf average the flip in
# the model (test_cfg flip=True) and score with S5IoUMetric;
# potsdam_tta_pipeline serves `tools/test.py --tta` (SegTTAModel).
# Variables carry the dataset prefix so the four dataset bases combine in
# one multi-dataset config (MMEngine forbids one key in two bases). A
# single-dataset config sets e.g.
#   train_dataloader = _base_.potsdam_train_dataloader
# Augmentation (S5 MoE-MDF): rescale 0.5-2.0, crop 512, h/v flip, rot90,
# colour jitter, grayscale, blur; the paper gives no values for fine-tuning,
# these are the S4P strong-view values. Crops smaller than 512 (after a
# downscale) are padded by the model's data_preprocessor (size=(512, 512),
# seg_pad_val=255). Every sample carries 'dataset_name' (routing key), kept
# by PackSegInputs through potsdam_meta_keys.
potsdam_type = 'S5PotsdamDataset'
potsdam_root = 'data/potsdam'
potsdam_crop_size = (512, 512)
potsdam_meta_keys = (
    'img_path', 'seg_map_path', 'ori_shape', 'img_shape',
    'pad_shape', 'scale_factor', 'flip', 'flip_direction',
    'reduce_zero_label', 'dataset_name')
potsdam_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=potsdam_crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='RandomRot90', prob=0.5),
    dict(type='MultiBandColorJitter', brightness=0.5, contrast=0.5,
         saturation=0.5, hue=0.25, prob=0.8),
    dict(type='MultiBandGrayscale', prob=0.2),
    dict(type='MultiBandGaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='PackSegInputs', meta_keys=potsdam_meta_keys),
]
potsdam_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=potsdam_meta_keys),
]
# horizontal-flip averaging: MMSeg's TestTimeAug + SegTTAModel
potsdam_tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs', meta_keys=potsdam_meta_keys)],
        ]),
]
# SeededDataset + a Seeded* sampler: per-sample augmentation seeds, so a
# resumed run sees the augmentations of a straight one (multi-dataset
# configs take the dataset inside: .dataset.dataset).
potsdam_train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededDefaultSampler', shuffle=True),
    dataset=dict(type='SeededDataset', dataset=dict(
        type=potsdam_type,
        data_root=potsdam_root,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=potsdam_train_pipeline)))
potsdam_val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=potsdam_type,
        data_root=potsdam_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=potsdam_test_pipeline))
potsdam_test_dataloader = potsdam_val_dataloader
potsdam_val_evaluator = dict(type='IoUMetric', iou_metrics=['mFscore'])
potsdam_test_evaluator = potsdam_val_evaluator
