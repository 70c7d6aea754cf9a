# Single-dataset fine-tuning of ViT-B on LoveDA (7 classes, mIoU with a 512/256
# sliding window): the comparison for MoE-MDF. Plain S5ViT-B + UperNet + one
# classifier (103.2 M), the same S4P initialisation, per-GPU batch (12),
# schedule (100 epochs, AdamW 5e-5, wd 0.05, cosine) and evaluation protocol as
# configs/mdf/vit-b-moe_4seg.py. Launch: tools/dist_train.sh <this> 8
_base_ = ['../mdf/vit-b-moe_4seg.py']
dataset_names = ['loveda']
model = dict(
    dataset_names=dataset_names,
    backbone=dict(num_experts=0, dataset_names=None),
    decode_head=dict(_delete_=True,
                     loveda=_base_.model.decode_head.loveda),
    train_cfg=dict(_delete_=True),
    test_cfg=dict(datasets=dict(
        _delete_=True,
        loveda=dict(mode='slide', crop_size=(512, 512), stride=(256, 256)))))
train_dataloader = dict(
    batch_size=_base_.per_dataset_batch,
    sampler=dict(batch_size=_base_.per_dataset_batch, source_ratio=[1]),
    # the MDFConcatDataset inside SeededDataset; the base's dataset inside
    dataset=dict(dataset=dict(
        dataset_names=dataset_names,
        datasets=[_base_.loveda_train_dataloader.dataset.dataset])))
val_dataloader = dict(dataset=dict(
    dataset_names=dataset_names,
    datasets=[_base_.loveda_val_dataloader.dataset]))
test_dataloader = val_dataloader
val_evaluator = dict(dataset_metrics=dict(
    _delete_=True,
    loveda=_base_.val_evaluator.dataset_metrics.loveda))
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=8 * 12)
