"""Helpers of tests/engine/test_fsdp_smoke.py: the tiny S4P model of the
FSDP configs, synthetic multi-branch batches, forked gloo workers."""
import os

import torch

from s5_mm.testing.checks import free_port

CONFIG = 'configs/s4p/vit-l_rs4p1m_fsdp.py'
SIZE = 32  # input crop
DIMS, DEPTH = 32, 2  # tiny ViT


def tiny_cfg(path=CONFIG, **semi):
    """The FSDP config with a tiny ViT (32 dims, 2 blocks, patch 8) on 32 px
    crops, BN for SyncBN, no dropout / drop-path (so two processes can be
    compared to one), random init."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    seg = cfg.model.segmentor
    seg.backbone.update(
        arch=dict(embed_dims=DIMS, num_layers=DEPTH, num_heads=2,
                  out_indices=(0, 1, 1, 1)),
        img_size=SIZE, patch_size=8, drop_path_rate=0., init_cfg=None)
    seg.neck.in_channels = DIMS
    seg.decode_head.update(in_channels=[DIMS] * 4, channels=8,
                           pool_scales=(1, 2), dropout_ratio=0.,
                           norm_cfg=dict(type='BN', requires_grad=True))
    seg.data_preprocessor.size = (SIZE, SIZE)
    cfg.model.data_preprocessor = None
    # every pixel confident: the unsupervised loss is never empty
    cfg.model.semi_train_cfg.update(conf_thresh=0.0, **semi)
    return cfg


def build_model(cfg, seed=0):
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401
    from s5_mm.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def batch(n_lab=2, n_unl=2, seed=0):
    """A MultiBranch batch: labelled images with 16-class masks, unlabelled
    weak / strong views (strong = weak + noise) with an all-image mask."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    shape = (SIZE, SIZE)

    def sample(mask):
        s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                        pad_shape=shape))
        s.gt_sem_seg = PixelData(data=mask.view(1, *shape).long())
        return s

    sup = [torch.randint(0, 255, (3, *shape), generator=g).float()
           for _ in range(n_lab)]
    weak = [torch.randint(0, 255, (3, *shape), generator=g).float()
            for _ in range(n_unl)]
    strong = [(w + 20 * torch.randn(w.shape, generator=g)).clamp(0, 255)
              for w in weak]
    labels = [torch.randint(0, 16, shape, generator=g) for _ in range(n_lab)]
    zeros = torch.zeros(shape)
    return dict(
        inputs=dict(sup=sup, unsup_teacher=weak, unsup_student=strong),
        data_samples=dict(
            sup=[sample(m) for m in labels],
            unsup_teacher=[sample(zeros) for _ in weak],
            unsup_student=[sample(zeros) for _ in strong]))


def _entry(rank, fn, world, port, args):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    fn(rank, world, *args)


def run_ranks(fn, world, *args):
    """``fn(rank, world, *args)`` in ``world`` forked processes with the
    torchrun environment (the parent's imports are inherited: no re-import).
    """
    import torch.multiprocessing as mp
    mp.start_processes(_entry, args=(fn, world, free_port(), args),
                       nprocs=world, join=True, start_method='fork')


def runner_cfg(root, work_dir, max_iters, resume_from=None, path=CONFIG):
    """The FSDP config as tools/train.py runs it (launcher 'pytorch'), with
    the tiny model, 2 + 2 images of 32 px per process, a checkpoint and a
    validation every 2 iterations. On CPU: the plain OptimWrapper
    (AmpOptimWrapper asserts CUDA); the strategy's FSDP bf16 mixed precision
    is kept."""
    cfg = tiny_cfg(path)
    isaid, pool = root / 'iSAID', root / 'pool'
    from s5_mm.testing import use_tiny_s4p_data
    use_tiny_s4p_data(cfg, isaid, pool, crop=SIZE)
    cfg.optim_wrapper = dict(type='OptimWrapper',
                             optimizer=cfg.optim_wrapper.optimizer)
    cfg.optim_wrapper.optimizer.lr = 1e-3
    cfg.param_scheduler[0].update(T_max=max_iters, end=max_iters)
    cfg.train_cfg.update(max_iters=max_iters, val_interval=2)
    cfg.default_hooks.checkpoint.update(interval=2, save_best=None)
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = [dict(type='IterSeedHook'),
                        dict(type='S4PStatsHook', interval=1)]
    cfg.randomness = dict(seed=0)
    cfg.launcher = 'pytorch'
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = str(resume_from)
    # the runner formats the whole config (yapf) 3 times per run, most of
    # the test's time: drop the base files' helper variables
    for key in set(cfg.keys()) - RUNNER_KEYS:
        cfg.pop(key)
    return cfg


RUNNER_KEYS = {
    'model', 'train_dataloader', 'val_dataloader', 'test_dataloader',
    'val_evaluator', 'test_evaluator', 'train_cfg', 'val_cfg', 'test_cfg',
    'optim_wrapper', 'param_scheduler', 'default_hooks', 'custom_hooks',
    'env_cfg', 'strategy', 'runner_type', 'visualizer', 'log_processor',
    'default_scope', 'custom_imports', 'randomness', 'launcher', 'work_dir',
    'load_from', 'resume', 'log_level'
}
