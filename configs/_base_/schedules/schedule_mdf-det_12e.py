# MoE-MDF detection (S5_METHOD.md section 4): the schedule of
# ./schedule_det_12e.py on iterations, since the multi-source sampler is
# infinite. One "epoch" = one pass over DIOR-R trainval (11,725 images) at 2
# images per GPU on 8 GPUs = 733 iterations (each also draws 2 DOTA-v2
# patches per GPU); change iters_per_epoch for another GPU count.
iters_per_epoch = 733
max_iters = 12 * iters_per_epoch
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[8 * iters_per_epoch, 11 * iters_per_epoch], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=iters_per_epoch, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='mmdet.DetVisualizationHook'))
