# Land-cover demo schedule (CPU): 1000 iterations, AdamW lr 1e-3, wd 0.01
# (none on the position embedding and norms), linear warm-up from 1 % over
# 100 iterations, then cosine to 0; one validation and one checkpoint at the
# end. tools/run_s4p_demo.py --iters N stretches it to N iterations.
max_iters = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(
        pos_embed=dict(decay_mult=0.), norm=dict(decay_mult=0.))))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False, begin=100,
         end=max_iters),
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
                    interval=max_iters, max_keep_ckpts=2, save_best=None,
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # bands 3,2,1 (NIR, red, green): the usual false-colour composite
    visualization=dict(type='GeoSegVisualizationHook', rgb_bands=(3, 2, 1)))
