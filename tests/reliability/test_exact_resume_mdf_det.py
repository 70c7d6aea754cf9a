"""2N iterations = N + resume + N for the shipped MoE-MDF segmentor demo
config (configs/demo/mdf_vit-tiny_landcover.py: random flips and rot90,
drop path) and the two-dataset MoE detector demo config
(configs/mdf_det/vit-tiny-moe_dota-mini_dior-fmt.py: random crops and
flips, random RPN / RoI sampling), as shipped: SeededDataset, seeded
samplers and IterSeedHook come from the configs. Weights, optimizer,
scheduler and message hub must be bit-equal. The unseeded variant of the
segmentor (plain mmdet.MultiSourceSampler, no wrapper, no hook) differs,
so the comparison can fail.

AMP: mmengine's AmpOptimWrapper refuses to build without an accelerator;
the CPU test below checks that its loss-scaler state (scale, growth
tracker) goes through a training checkpoint and back on resume."""
from functools import partial

import pytest
import torch
from mmengine.runner import Runner

import s5_mm  # noqa: F401
from s5_mm.testing import load_tool

N = 3  # iterations before the interruption; 2N in all


def differing(a, b):
    return [k for k in a if not torch.equal(a[k], b[k])]


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_same_run(a, b, iters):
    sa, sb = a['state_dict'], b['state_dict']
    assert sa.keys() == sb.keys()
    # CPU, one process, the same ops in the same order: no tolerance
    assert differing(sa, sb) == []
    oa, ob = a['optimizer']['state'], b['optimizer']['state']
    assert oa.keys() == ob.keys() and oa
    for k in oa:
        assert int(oa[k]['step']) == int(ob[k]['step']) == iters
        assert torch.equal(oa[k]['exp_avg'], ob[k]['exp_avg'])
        assert torch.equal(oa[k]['exp_avg_sq'], ob[k]['exp_avg_sq'])
    assert a['param_schedulers'] == b['param_schedulers']
    ha, hb = a['message_hub'], b['message_hub']
    # (the 0-based index of the last iteration)
    assert ha['runtime_info']['iter'] == hb['runtime_info']['iter'] == \
        iters - 1
    for key, hist in ha['log_scalars'].items():
        if key.startswith('train/') and 'time' not in key:
            assert hist.current() == hb['log_scalars'][key].current(), key


def straight_and_resumed(make_cfg, tmp_path):
    """``make_cfg(work_dir)``: a 2N-iteration config checkpointing every N
    iterations. Returns the two iteration-2N checkpoints."""
    Runner.from_cfg(make_cfg(tmp_path / 'a')).train()
    first = make_cfg(tmp_path / 'b')
    first.train_cfg.max_iters = N  # interrupted; the schedule stays 2N
    Runner.from_cfg(first).train()
    second = make_cfg(tmp_path / 'b')
    second.resume = True
    second.load_from = str(tmp_path / 'b' / f'iter_{N}.pth')
    Runner.from_cfg(second).train()
    return [load(tmp_path / r / f'iter_{2 * N}.pth') for r in ('a', 'b')]


# ------------------------------------------------------------- MoE-MDF
@pytest.fixture(scope='module')
def mdf_tiles(landcover_tiles):
    load_tool('run_mdf_demo.py').make_mdf_splits(landcover_tiles)
    return landcover_tiles


def mdf_cfg(tiles, work_dir, seeded=True):
    demo = load_tool('run_mdf_demo.py')
    cfg = demo.build_cfg(demo.CONFIGS['moe'][0], tiles, work_dir, 0, 2 * N,
                         None)
    cfg.default_hooks.checkpoint.interval = N
    cfg.train_cfg.val_interval = 100  # no validation
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.logger.interval = 1
    dl = cfg.train_dataloader
    assert dl.dataset.type == 'SeededDataset'  # as shipped
    assert dl.sampler.type == 'SeededMultiSourceSampler'
    assert [h.type for h in cfg.custom_hooks][0] == 'IterSeedHook'
    # random flips / rot90 of the shipped pipeline, and drop path
    types = [t.type for t in dl.dataset.dataset.datasets[0].pipeline]
    assert 'RandomFlip' in types and 'RandomRot90' in types
    assert cfg.model.backbone.drop_path_rate > 0
    if not seeded:  # the mechanism off: what the configs shipped before
        dl.dataset = dl.dataset.dataset
        dl.sampler.type = 'mmdet.MultiSourceSampler'
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if h.type != 'IterSeedHook']
    return cfg


def test_mdf_segmentor_resume_is_exact(mdf_tiles, tmp_path):
    a, b = straight_and_resumed(partial(mdf_cfg, mdf_tiles), tmp_path)
    assert any('expert' in k for k in a['state_dict'])  # the MoE model
    assert_same_run(a, b, 2 * N)


def test_unseeded_mdf_resume_differs(mdf_tiles, tmp_path):
    a, b = straight_and_resumed(partial(mdf_cfg, mdf_tiles, seeded=False),
                                tmp_path)
    assert differing(a['state_dict'], b['state_dict'])


# ---------------------------------------------------- MoE detector (DOTA)
@pytest.fixture(scope='module')
def det_data(tmp_path_factory):
    demo = load_tool('run_det_demo.py')
    if not (demo.SHARED / 'dota_mini').is_dir():
        pytest.skip(f'shared DOTA images not found: {demo.SHARED}')
    root, lists, _ = demo.prepare_data(str(tmp_path_factory.mktemp('det')),
                                       512, 128)
    return root, lists


def det_cfg(data, work_dir):
    demo = load_tool('run_det_demo.py')
    cfg = demo.build_cfg(demo.CONFIGS['moe'], str(work_dir), *data, 2 * N, 0)
    cfg.default_hooks.checkpoint.interval = N
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.visualization = dict(type='mmdet.DetVisualizationHook')
    dl = cfg.train_dataloader
    dl.update(num_workers=0, persistent_workers=False)
    assert dl.dataset.type == 'SeededDataset'  # as shipped
    assert dl.sampler.type == 'SeededMultiSourceSampler'
    assert 'IterSeedHook' in [h.type for h in cfg.custom_hooks]
    types = [t.type for t in dl.dataset.dataset.datasets[0].pipeline]
    assert 'mmdet.RandomCrop' in types and 'mmdet.RandomFlip' in types
    return cfg


@pytest.mark.slow
def test_moe_detector_resume_is_exact(det_data, tmp_path):
    a, b = straight_and_resumed(partial(det_cfg, det_data), tmp_path)
    assert any(k.startswith('dataset_heads.') or 'dota' in k
               for k in a['state_dict'])
    assert_same_run(a, b, 2 * N)


# ----------------------------------------------------------------- AMP
@pytest.fixture
def cpu_amp(monkeypatch):
    """AmpOptimWrapper on CPU: bf16 autocast and a CPU GradScaler (mmengine
    asserts an accelerator; the wrapper's checkpoint code is the same)."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper as amp
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(amp, 'GradScaler',
                        partial(torch.amp.GradScaler, device='cpu'))


@pytest.mark.parametrize('restored', [True, False])
def test_amp_loss_scaler_state_resumes(cpu_amp, toy_seg_data, tmp_path,
                                       monkeypatch, restored):
    from mmengine.optim import AmpOptimWrapper
    from test_exact_resume import s4p_cfg
    if not restored:  # a checkpoint loader that drops the scaler state
        load_sd = AmpOptimWrapper.load_state_dict
        monkeypatch.setattr(
            AmpOptimWrapper, 'load_state_dict',
            lambda self, sd: load_sd(self, {k: v for k, v in sd.items()
                                            if k != 'loss_scaler'}))

    def make(work_dir):
        cfg = s4p_cfg(toy_seg_data, work_dir, 2 * N, 'ema', seeded=True)
        # the scale doubles every 2 finite steps: after N = 3 steps scale
        # 2 ** 17 with one step counted towards the next doubling
        cfg.optim_wrapper = dict(
            type='AmpOptimWrapper', optimizer=cfg.optim_wrapper.optimizer,
            loss_scale=dict(init_scale=2.**16, growth_interval=2))
        cfg.default_hooks.checkpoint.interval = N
        return cfg

    a, b = straight_and_resumed(make, tmp_path)
    half = load(tmp_path / 'b' / f'iter_{N}.pth')['optimizer']['loss_scaler']
    assert (half['scale'], half['_growth_tracker']) == (2.**17, 1)
    ends = [(c['optimizer']['loss_scaler']['scale'],
             c['optimizer']['loss_scaler']['_growth_tracker']) for c in (a, b)]
    if restored:
        assert ends == [(2.**19, 0)] * 2
        assert differing(a['state_dict'], b['state_dict']) == []
    else:  # restarted at 2 ** 16: the failure the real resume avoids
        assert ends == [(2.**19, 0), (2.**17, 1)]
