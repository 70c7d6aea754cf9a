# S4P data: labelled iSAID (weak view) + unlabelled RS4P-1M (weak and strong
# views of the same crop), 12 + 12 images per GPU from one
# mmdet.MultiSourceSampler. Geometric transforms run before MultiBranch, so
# the views stay pixel-aligned; photometric strong transforms only on the
# student branch. Validation: iSAID val (from isaid.py).
_base_ = ['./isaid.py']

unlabeled_type = 'UnlabeledImageDataset'
unlabeled_root = 'data/RS4P-1M'
# What `tools/select_data.py ... --out data/RS4P-1M` writes: one image path
# per line (+ entropy and cluster columns, ignored here).
unlabeled_list = 'selected.txt'
crop_size = (512, 512)
labeled_per_gpu = 12
unlabeled_per_gpu = 12
branch_field = ['sup', 'unsup_teacher', 'unsup_student']

weak_geometric = [
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
]
strong_photometric = [
    dict(type='MultiBandColorJitter', brightness=0.5, contrast=0.5,
         saturation=0.5, hue=0.25, prob=0.8),
    dict(type='MultiBandGrayscale', prob=0.2),
    dict(type='MultiBandGaussianBlur', sigma=(0.1, 2.0), prob=0.5),
]
sup_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CropWindow'),
    *weak_geometric,
    dict(type='mmdet.MultiBranch', branch_field=branch_field,
         sup=[dict(type='PackSegInputs')]),
]
unsup_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AddPaddingMask'),
    *weak_geometric,
    dict(
        type='mmdet.MultiBranch',
        branch_field=branch_field,
        unsup_teacher=[dict(type='PackSegInputs')],
        unsup_student=[*strong_photometric,
                       dict(type='PackSegInputs')]),
]
labeled_dataset = dict(
    type='S5iSAIDDataset',
    data_root='data/iSAID',
    quadrants=True,
    data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
    pipeline=sup_pipeline)
unlabeled_dataset = dict(
    type=unlabeled_type,
    data_root=unlabeled_root,
    ann_file=unlabeled_list,
    data_prefix=dict(img_path=''),
    pipeline=unsup_pipeline)
train_dataloader = dict(
    _delete_=True,
    batch_size=labeled_per_gpu + unlabeled_per_gpu,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(
        type='SeededMultiSourceSampler',  # per-sample augmentation seeds
        batch_size=labeled_per_gpu + unlabeled_per_gpu,
        source_ratio=[labeled_per_gpu, unlabeled_per_gpu]),
    dataset=dict(type='SeededDataset', dataset=dict(
        type='ConcatDataset',
        # the unlabelled set has no classes; the labelled metainfo is kept
        ignore_keys=['classes', 'palette', 'label_map', 'reduce_zero_label'],
        datasets=[labeled_dataset, unlabeled_dataset])))
