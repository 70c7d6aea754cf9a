# CPU demo data of the two-dataset (MoE-MDF) detector: ./dota-mini.py's DOTA
# patches ('dota', 4 classes) + the DIOR-R-format crops of the same images
# (../shared/data/rotated/dior_format_from_dota, 800 x 800, classes vehicle,
# ship, harbor; 'dior'). tools/run_det_demo.py writes the DIOR-format split
# lists: train = the P0003 / P0706 crops, heldout = the P0004 crops, so the
# held-out image stays unseen by both datasets. Each step: 2 + 2 crops.
_base_ = ['./dota-mini.py']
dior_type = 'mmrotate.S5DIORDataset'
dior_root = '../shared/data/rotated/dior_format_from_dota/'
dior_classes = ('vehicle', 'ship', 'harbor')
dior_lists = 'data/dior_fmt_lists/'


def _dior(split, **kwargs):
    return dict(type=dior_type, data_root=dior_root, dataset_name='dior',
                ann_file=f'{dior_lists}{split}.txt',
                data_prefix=dict(img_path='JPEGImages-trainval'),
                metainfo=dict(classes=dior_classes), **kwargs)


dota_train = _base_.train_dataloader.dataset.dataset  # in SeededDataset
dior_train = _dior('train', filter_cfg=dict(filter_empty_gt=True),
                   pipeline=_base_.train_pipeline)
dota_heldout = _base_.val_dataloader.dataset
dior_heldout = _dior('heldout', diff_thr=0, test_mode=True,
                     pipeline=_base_.test_pipeline)
del _dior
train_dataloader = dict(
    batch_size=4,
    sampler=dict(_delete_=True, type='SeededMultiSourceSampler',
                 batch_size=4, source_ratio=[2, 2]),
    dataset=dict(_delete_=True, type='SeededDataset', dataset=dict(
        type='mmdet.ConcatDataset', datasets=[dior_train, dota_train])))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='mmdet.ConcatDataset',
                 datasets=[dior_heldout, dota_heldout]))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='mmrotate.RotatedVOCMetric', iou_thrs=[0.5, 0.3, 0.1],
         dataset_name='dior', prefix='dior'),
    dict(_base_.val_evaluator, dataset_name='dota'),
]
test_evaluator = val_evaluator
