# MoE-MDF segmentation, ViT-B (S5_METHOD.md sections 4-5): one S5ViT-B with
# MoE FFNs (p = 256, one expert per dataset) and one UperNet + classifier
# per dataset on Vaihingen, Potsdam, LoveDA and OpenEarthMap: 160.4 M
# parameters. Initialised from an S4P checkpoint (experts from the plain
# fc2, every decoder from the S4P decoder, new classifiers). Each step draws
# 12 images of every dataset per GPU (each repeated to the longest); the
# four CE losses are summed with equal weight. 100 epochs (of the longest
# dataset), AdamW 5e-5, wd 0.05, cosine. One val/test loop scores each
# dataset with its protocol: Vaihingen mIoU + h-flip, Potsdam mF1 + h-flip,
# LoveDA mIoU with a 512/256 sliding window, OpenEarthMap mIoU on images
# resized to 512 (test pipeline) and upsampled; results <name>/<metric> and
# 'mean' (of the four). Launch: tools/dist_train.sh <this> 8
_base_ = [
    '../_base_/models/s5_moe_mdf_seg.py',
    '../_base_/datasets/vaihingen.py',
    '../_base_/datasets/potsdam.py',
    '../_base_/datasets/loveda.py',
    '../_base_/datasets/openearthmap.py',
    '../_base_/default_runtime.py',
]
arch = 'b'
embed_dims = 768
num_layers = 12
# tools/model_converters or an S4P run (configs/s4p/vit-b_rs4p1m.py): an
# S4PSegmentor checkpoint (student.* keys) or a plain segmentor one.
load_from = 'pretrain/s4p_vit-b_rs4p1m.pth'
per_dataset_batch = 12  # per GPU
max_epochs = 100
# 1.0 = no layer-wise lr decay (S5); e.g. 0.9 to decay towards the input.
layer_decay_rate = 1.0
dataset_names = ['vaihingen', 'potsdam', 'loveda', 'openearthmap']

model = dict(
    backbone=dict(arch=arch, with_cp=True),
    neck=dict(in_channels=embed_dims),
    decode_head=dict(
        vaihingen=dict(in_channels=[embed_dims] * 4,
                       loss_decode=dict(avg_non_ignore=True)),
        potsdam=dict(in_channels=[embed_dims] * 4,
                     loss_decode=dict(avg_non_ignore=True)),
        loveda=dict(in_channels=[embed_dims] * 4,
                    loss_decode=dict(avg_non_ignore=True)),
        openearthmap=dict(in_channels=[embed_dims] * 4,
                          loss_decode=dict(avg_non_ignore=True))),
    # equal weights; the released setting switches Vaihingen on late:
    # dataset_start_iters=dict(vaihingen=N) (off here)
    train_cfg=dict(
        dataset_loss_weights=dict(vaihingen=1., potsdam=1., loveda=1.,
                                  openearthmap=1.),
        dataset_start_iters=dict()),
    test_cfg=dict(
        mode='whole',
        datasets=dict(
            vaihingen=dict(flip=True),
            potsdam=dict(flip=True),
            loveda=dict(mode='slide', crop_size=(512, 512),
                        stride=(256, 256)))))

train_dataloader = dict(
    batch_size=per_dataset_batch * 4,
    num_workers=8,
    persistent_workers=True,
    # with SeededDataset: per-sample augmentation seeds (exact resume)
    sampler=dict(type='SeededMultiSourceSampler',
                 batch_size=per_dataset_batch * 4,
                 source_ratio=[1, 1, 1, 1]),
    dataset=dict(type='SeededDataset', dataset=dict(
        type='MDFConcatDataset',
        dataset_names=dataset_names,
        # the datasets inside the bases' SeededDataset wrappers
        datasets=[
            _base_.vaihingen_train_dataloader.dataset.dataset,
            _base_.potsdam_train_dataloader.dataset.dataset,
            _base_.loveda_train_dataloader.dataset.dataset,
            _base_.openearthmap_train_dataloader.dataset.dataset,
        ])))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='MDFConcatDataset',
        dataset_names=dataset_names,
        datasets=[
            _base_.vaihingen_val_dataloader.dataset,
            _base_.potsdam_val_dataloader.dataset,
            _base_.loveda_val_dataloader.dataset,
            _base_.openearthmap_val_dataloader.dataset,
        ]))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='MultiDatasetSegMetric',
    dataset_metrics=dict(
        vaihingen=dict(type='S5IoUMetric', iou_metrics=['mIoU']),
        potsdam=dict(type='S5IoUMetric', iou_metrics=['mFscore', 'mIoU']),
        loveda=dict(type='S5IoUMetric', iou_metrics=['mIoU']),
        openearthmap=dict(type='S5IoUMetric', iou_metrics=['mIoU'])))
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=5e-5, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='S5LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=num_layers,
                       layer_decay_rate=layer_decay_rate))
# cosine to 0 over the whole run (end = the loop's max_iters)
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=0)
]
train_cfg = dict(type='MultiSourceTrainLoop', max_epochs=max_epochs,
                 val_interval_epochs=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000,
                    max_keep_ckpts=3, save_best='mean', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [dict(type='IterSeedHook'), dict(type='MultiDatasetCheckHook')]
# 8 GPUs x 4 datasets x 12 images, the paper's setting.
auto_scale_lr = dict(enable=False, base_batch_size=8 * 48)
