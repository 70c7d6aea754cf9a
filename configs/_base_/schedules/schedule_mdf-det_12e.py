# MoE-MDF detection (S5_METHOD.md section 4): 12 epochs, steps at 8 and 11,
# on the infinite multi-source sampler. MultiSourceTrainLoop counts an epoch
# as one pass over dataset `epoch_source` (0: DIOR-R trainval, the paper does
# not say which) at its images per GPU and the number of processes (733
# iterations on 8 GPUs), and gives the epoch-based MultiStepLR that epoch
# length, so the schedule holds on any GPU count.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         convert_to_iter_based=True, milestones=[8, 11], gamma=0.1),
]
train_cfg = dict(type='mmseg.MultiSourceTrainLoop', max_epochs=12,
                 val_interval_epochs=12, epoch_source=0)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000,
                    max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmdet.DetVisualizationHook'))
