# MoE-MDF detection data (S5_METHOD.md section 4): DIOR-R (trainval, 20
# classes) + DOTA-v2.0 (1024 / 200 patches of trainval, 18 classes), every
# step 2 images of each per GPU (mmdet MultiSourceSampler over an mmdet
# ConcatDataset; infinite, so the schedule is iteration based). Samples carry
# metainfo['dataset_name'] ('dior' / 'dota') for the MoE routing. Evaluation:
# one RotatedVOCMetric per dataset, picking its samples and classes by
# dataset_name: DIOR-R test mAP@0.5 (VOC07 11-point), DOTA-v2 val patches
# (a monitor); test writes the DOTA-v2 test-dev submission.
# The pipelines (1024 input, h/v/diagonal flips) are those of ./dota2.py.
_base_ = ['./dota2.py']
dior_type = 'mmrotate.S5DIORDataset'
dior_root = 'data/DIOR/'
dota_type = _base_.dataset_type
dota_root = _base_.data_root


def _dior(split, images='JPEGImages-trainval', **kwargs):
    return dict(type=dior_type, data_root=dior_root, dataset_name='dior',
                ann_file=f'ImageSets/Main/{split}.txt',
                data_prefix=dict(img_path=images), **kwargs)


dior_trainval = dict(
    type='mmdet.ConcatDataset',
    datasets=[
        _dior(s, filter_cfg=dict(filter_empty_gt=True),
              pipeline=_base_.train_pipeline) for s in ('train', 'val')
    ])
# (the DOTA-v2 dataset inside ./dota2.py's SeededDataset)
dota_trainval = dict(_base_.train_dataloader.dataset.dataset,
                     dataset_name='dota')
dior_test = _dior('test', 'JPEGImages-test', diff_thr=0, test_mode=True, pipeline=_base_.val_pipeline)
del _dior
train_dataloader = dict(
    batch_size=4,
    sampler=dict(_delete_=True, type='SeededMultiSourceSampler',
                 batch_size=4, source_ratio=[2, 2]),
    dataset=dict(_delete_=True, type='SeededDataset', dataset=dict(
        type='mmdet.ConcatDataset', datasets=[dior_trainval, dota_trainval])))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='mmdet.ConcatDataset', datasets=[
        dior_test, dict(_base_.val_dataloader.dataset, dataset_name='dota')
    ]))
test_dataloader = dict(
    dataset=dict(_delete_=True, type='mmdet.ConcatDataset', datasets=[
        dior_test, dict(_base_.test_dataloader.dataset, dataset_name='dota')
    ]))
val_evaluator = [
    dict(type='mmrotate.RotatedVOCMetric', dataset_name='dior',
         iou_thrs=0.5, eval_mode='11points', prefix='dior'),
    dict(_base_.val_evaluator, dataset_name='dota'),
]
test_evaluator = [
    val_evaluator[0],
    dict(_base_.test_evaluator, dataset_name='dota'),
]
