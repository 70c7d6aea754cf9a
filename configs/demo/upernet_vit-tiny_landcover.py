# Foundation demo (tools/run_demo.sh): a tiny S5 ViT + simple feature pyramid
# + UperNet trained from scratch on the Landsat-7 land-cover tiles (6 bands,
# 7 classes), CPU.
_base_ = [
    '../_base_/models/s5_upernet_vit-tiny_landcover.py',
    '../_base_/datasets/landcover.py',
    '../_base_/schedules/schedule_demo_1k.py', '../_base_/default_runtime.py'
]
# The demo schedule over 1500 iterations (same 100-iteration warm-up),
# validated every 500, keeping the best mIoU checkpoint.
max_iters = 1500
param_scheduler = _base_.param_scheduler
param_scheduler[-1].end = max_iters
train_cfg = dict(max_iters=max_iters, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=500, save_best='mIoU'))
randomness = dict(seed=0)
# the total batch of the one process this CPU demo runs in (paper configs:
# their 8-GPU total, docs/scaling.md)
auto_scale_lr = dict(enable=False,
                     base_batch_size=_base_.train_dataloader.batch_size)
