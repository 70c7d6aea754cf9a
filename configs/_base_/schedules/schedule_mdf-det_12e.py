# MoE-MDF detection (S5_METHOD.md section 4): ./schedule_det_12e.py on the
# infinite multi-source sampler. MultiSourceTrainLoop counts an epoch as one
# pass over dataset `epoch_source` (0: DIOR-R trainval, the paper does not
# say which) at its images per GPU and the number of processes (733
# iterations on 8 GPUs), and gives the epoch-based MultiStepLR that epoch
# length, so the schedule holds on any GPU count.
_base_ = './schedule_det_12e.py'
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         convert_to_iter_based=True, milestones=[8, 11], gamma=0.1),
]
train_cfg = dict(_delete_=True, type='mmseg.MultiSourceTrainLoop',
                 max_epochs=12, val_interval_epochs=12, epoch_source=0)
default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=1000, save_last=True))
