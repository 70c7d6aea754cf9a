"""configs/s4p: the paper's settings, model sizes, and a tiny end-to-end run
of the full config (iSAID quadrants + unlabelled list, MultiSourceSampler,
S4PSegmentor, foreground mIoU) with small overrides."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import s5_mm  # noqa: F401
from s5_mm.registry import MODELS
from s5_mm.testing import use_tiny_s4p_data, write_tiny_s4p_data
from s5_mm.testing.checks import confusion, miou, val_capture_hook

ARCHS = {'b': (768, 103.2), 'l': (1024, 327.4), 'h': (1280, 663.4)}


@pytest.fixture(autouse=True)
def _cwd(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)


@pytest.mark.parametrize('arch', sorted(ARCHS))
def test_paper_settings(arch):
    cfg = Config.fromfile(f'configs/s4p/vit-{arch}_rs4p1m.py')
    m = cfg.model
    assert m.type == 'S4PSegmentor'
    assert m.semi_train_cfg.conf_thresh == 0.95
    assert (m.semi_train_cfg.sup_weight, m.semi_train_cfg.unsup_weight) == \
        (0.5, 0.5)
    assert m.semi_train_cfg.cutmix_prob == 0.5
    assert tuple(m.semi_train_cfg.cutmix_area) == (0.02, 0.4)
    assert m.semi_train_cfg.teacher == 'self'
    assert m.semi_train_cfg.unsup_start_iter == 0
    bb = m.segmentor.backbone
    assert (bb.type, bb.arch, bb.with_cp, bb.drop_path_rate) == \
        ('S5ViT', arch, True, 0.1)
    assert m.segmentor.decode_head.num_classes == 16
    assert m.segmentor.decode_head.loss_decode.avg_non_ignore
    assert m.segmentor.decode_head.in_channels == [ARCHS[arch][0]] * 4
    assert m.segmentor.neck.in_channels == ARCHS[arch][0]
    assert f'vit-{arch}' in bb.init_cfg.checkpoint
    assert cfg.train_cfg.max_iters == 120000
    assert cfg.train_cfg.val_interval == 2000
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, tuple(opt.betas)) == \
        ('AdamW', 5e-5, 0.01, (0.9, 0.999))
    (sched, ) = cfg.param_scheduler  # cosine only: no warm-up
    assert sched.type == 'CosineAnnealingLR' and sched.eta_min == 0
    assert sched.end == 120000
    dl = cfg.train_dataloader
    assert dl.batch_size == 24 and dl.sampler.batch_size == 24
    assert dl.sampler.type == 'SeededMultiSourceSampler'
    assert list(dl.sampler.source_ratio) == [12, 12]
    assert dl.dataset.type == 'SeededDataset'
    lab, unl = dl.dataset.dataset.datasets
    assert lab.type == 'S5iSAIDDataset' and lab.quadrants
    assert lab.data_root.startswith('data/')
    assert unl.type == 'UnlabeledImageDataset'
    assert unl.data_root.startswith('data/')
    assert cfg.val_evaluator.type == 'SubsetIoUMetric'
    assert list(cfg.val_evaluator.exclude_classes) == ['background']
    assert cfg.val_dataloader.dataset.quadrants
    assert any(h.type == 'S4PStatsHook' for h in cfg.custom_hooks)


@pytest.mark.parametrize('arch', sorted(ARCHS))
def test_student_size_matches_paper(arch):
    cfg = Config.fromfile(f'configs/s4p/vit-{arch}_rs4p1m.py')
    init_default_scope('mmseg')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    n = sum(p.numel() for p in model.student.parameters()) / 1e6
    assert n == pytest.approx(ARCHS[arch][1], abs=0.1)
    assert not hasattr(model, 'teacher')  # S5: same network, no EMA copy


def test_vit_b_config_trains_and_validates_with_tiny_overrides(tmp_path):
    isaid, pool = write_tiny_s4p_data(
        tmp_path, np.random.default_rng(0),
        pool_heights=[40 + 4 * i for i in range(5)])

    cfg = Config.fromfile('configs/s4p/vit-b_rs4p1m.py')
    seg = cfg.model.segmentor
    seg.backbone.update(arch='tiny', img_size=32, patch_size=4,
                        init_cfg=None)
    c = 64
    seg.neck.in_channels = c
    seg.decode_head.update(in_channels=[c] * 4, channels=16,
                           norm_cfg=dict(type='BN', requires_grad=True))
    seg.data_preprocessor.size = (32, 32)
    cfg.model.data_preprocessor = None
    cfg.model.semi_train_cfg.conf_thresh = 0.0  # exercise the unsup loss
    use_tiny_s4p_data(cfg, isaid, pool)
    cfg.optim_wrapper = dict(type='OptimWrapper',
                             optimizer=cfg.optim_wrapper.optimizer)
    cfg.param_scheduler[0].update(T_max=2, end=2)
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = [dict(type='S4PStatsHook', interval=1)]
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = 'test_s4p_vit_b_config'
    runner = Runner.from_cfg(cfg)
    capture = val_capture_hook()
    runner.register_hook(capture)
    runner.train()
    hub = runner.message_hub
    assert hub.get_scalar('train/unsup_loss_ce').current() > 0
    assert hub.get_scalar('train/sup_loss_ce').current() > 0
    metrics = {k[4:]: v.current() for k, v in hub.log_scalars.items()
               if k.startswith('val/')}
    # 4 quadrants per 64 px val patch, all whole 32 px crops
    assert len(runner.val_dataloader.dataset) == 4
    # the logged means are those of the predictions the validation scored:
    # over the foreground classes, and over all as mIoU_all (rounded)
    assert len(capture.samples) == 4
    pred, label = (np.stack(x) for x in zip(*capture.samples))
    classes = runner.val_dataloader.dataset.metainfo['classes']
    fg = [i for i, c in enumerate(classes) if c != 'background']
    assert metrics['mIoU'] == pytest.approx(
        miou(pred, label, len(classes), classes=fg), abs=0.006)
    assert metrics['mIoU_all'] == pytest.approx(
        miou(pred, label, len(classes)), abs=0.006)
    cm = confusion(pred, label, len(classes))
    with np.errstate(invalid='ignore'):
        acc = np.diag(cm) / cm.sum(1)
    assert metrics['mAcc'] == pytest.approx(np.nanmean(acc[fg]) * 100,
                                            abs=0.006)
    assert metrics['mAcc_all'] == pytest.approx(np.nanmean(acc) * 100,
                                                abs=0.006)
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
