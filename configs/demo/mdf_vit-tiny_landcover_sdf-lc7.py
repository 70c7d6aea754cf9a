# Single-dataset fine-tuning for the MDF demo comparison: lc7 alone (plain
# backbone, one head), the same steps, tiles per step, initialisation and
# evaluation protocol (mIoU, horizontal-flip averaging) as the MDF runs.
_base_ = ['./mdf_vit-tiny_landcover.py']

dataset_names = ['lc7']
model = dict(
    dataset_names=dataset_names,
    backbone=dict(num_experts=0, dataset_names=None),
    decode_head=dict(_delete_=True, lc7=_base_.model.decode_head.lc7),
    classifier_init=dict(
        dataset_classes=dict(_delete_=True, lc7=_base_.lc7_classes),
        class_maps=dict(_delete_=True)))
train_dataloader = dict(
    batch_size=_base_.per_dataset_batch,
    sampler=dict(batch_size=_base_.per_dataset_batch, source_ratio=[1]),
    dataset=dict(dataset=dict(  # the MDFConcatDataset in SeededDataset
        dataset_names=dataset_names,
        datasets=[_base_.train_dataloader.dataset.dataset.datasets[0]])))
val_dataloader = dict(
    dataset=dict(dataset_names=dataset_names,
                 datasets=[_base_.val_dataloader.dataset.datasets[0]]))
test_dataloader = dict(
    dataset=dict(dataset_names=dataset_names,
                 datasets=[_base_.test_dataloader.dataset.datasets[0]]))
val_evaluator = dict(dataset_metrics=dict(
    _delete_=True, lc7=_base_.val_evaluator.dataset_metrics.lc7))
test_evaluator = val_evaluator
# the total batch of the one process this CPU demo runs in (paper configs:
# their 8-GPU total, docs/scaling.md)
auto_scale_lr = dict(enable=False, base_batch_size=_base_.per_dataset_batch)
