default_scope = 'mmseg'
custom_imports = dict(imports=['s5_mm'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
# no fixed name: each Runner gets its own visualizer instance (and save_dir);
# SegLocalVisualizer that also draws multi-dataset test sets
visualizer = dict(type='S5SegLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
# Reseeds the global generators from (seed, iteration, rank) before every
# training iteration (drop path, dropout): exact resume. A config that sets
# its own custom_hooks replaces this list and must list it again.
custom_hooks = [dict(type='IterSeedHook')]
# A fixed seed: mmengine builds the sampler before it restores a resumed
# checkpoint's seed, so without one a resumed run draws another order.
randomness = dict(seed=0)
