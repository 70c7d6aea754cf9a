"""The FSDP configs (configs/s4p/vit-{l,h}_rs4p1m_fsdp.py) on CPU with gloo,
1 and 2 forked processes, with a tiny ViT (32 dims, 2 blocks) at 32 px.

What torch 2.11's FSDP1 allows on CPU (gloo) and these tests exercise:
``device_id='cpu'``, FULL_SHARD over 2 ranks (all-gather / reduce-scatter),
the per-block auto-wrap, activation checkpointing around the FSDP units,
bf16 FSDP mixed precision (bf16 compute, fp32 master weights), full state
dicts gathered on rank 0, resume. What it does not: ``AmpOptimWrapper``
(mmengine asserts CUDA; on CPU the plain OptimWrapper runs), SyncBN (needs
CUDA: BN here), a full state dict with ``offload_to_cpu=True`` on 2+ ranks
(segfaults; ``init_cpu_distributed`` turns the offload off on CPU).
"""
import math

import numpy as np
import pytest
import torch

import s5_mm  # noqa: F401
from s5_mm.engine.fsdp import S5FSDPStrategy, resolve_classes
from s5_mm.models.backbones.vit import TransformerBlock
from s5_mm.testing import write_tiny_s4p_data
from s5_mm.testing.checks import miou, val_capture_hook

import fsdp_utils as U

DEFAULT_SCOPE = 'mmseg'
STEPS = 2


@pytest.fixture(autouse=True)
def _cwd(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)


@pytest.mark.parametrize('arch,dims', [('l', 1024), ('h', 1280)])
def test_fsdp_configs_keep_the_s4p_settings(arch, dims):
    from mmengine.config import Config
    cfg = Config.fromfile(f'configs/s4p/vit-{arch}_rs4p1m_fsdp.py')
    base = Config.fromfile(f'configs/s4p/vit-{arch}_rs4p1m.py')
    assert cfg.model.to_dict() == base.model.to_dict()
    assert cfg.train_dataloader.to_dict() == base.train_dataloader.to_dict()
    assert cfg.model.segmentor.backbone.with_cp
    assert cfg.model.segmentor.backbone.arch == arch
    assert cfg.model.segmentor.neck.in_channels == dims
    assert cfg.model.semi_train_cfg.teacher == 'self'
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.strategy.type == 'S5FSDPStrategy'
    wrapper = cfg.strategy.model_wrapper
    assert wrapper.sharding_strategy == 'FULL_SHARD'
    assert wrapper.mixed_precision.param_dtype == 'bfloat16'
    assert resolve_classes(wrapper.auto_wrap_policy.layer_cls) == \
        {TransformerBlock}
    ow = cfg.optim_wrapper
    assert (ow.type, ow.dtype, ow.use_fsdp) == ('AmpOptimWrapper',
                                                'bfloat16', True)
    assert ow.optimizer.to_dict() == base.optim_wrapper.optimizer.to_dict()
    assert 'tools/dist_train.sh configs/s4p/vit-' in open(
        f'configs/s4p/vit-{arch}_rs4p1m_fsdp.py').read()


def test_resolve_classes_errors_name_the_entry():
    with pytest.raises(ValueError, match='not an import path'):
        resolve_classes('TransformerBlock')
    with pytest.raises(ValueError, match="'s5_mm.nope.Block' cannot be"):
        resolve_classes('s5_mm.nope.Block')
    with pytest.raises(TypeError, match='not an nn.Module'):
        resolve_classes('s5_mm.engine.fsdp.resolve_classes')


def test_ema_teacher_is_refused_with_a_clear_error():
    cfg = U.tiny_cfg(teacher='ema')
    model = U.build_model(cfg)
    strategy = S5FSDPStrategy.__new__(S5FSDPStrategy)  # no process group
    with pytest.raises(ValueError, match="teacher='ema' is not supported"):
        strategy._wrap_model(model)


# --------------------------------------------------------------- steps
def _wrap(model, mixed_precision):
    """The model wrapped as the config's strategy wraps it (device cpu)."""
    import copy

    from mmengine.registry import MODEL_WRAPPERS
    cfg = copy.deepcopy(U.tiny_cfg().strategy.model_wrapper.to_dict())
    cfg.update(module=model, device_id='cpu')
    if not mixed_precision:
        cfg.pop('mixed_precision')
    return MODEL_WRAPPERS.build(cfg)


def _step_worker(rank, world, out, mixed_precision):
    import torch.distributed as dist
    from mmengine.optim import OptimWrapper
    from torch.distributed.fsdp import FullStateDictConfig
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import StateDictType
    dist.init_process_group('gloo')
    try:
        # the same batch on every rank (no CutMix: its boxes depend on the
        # rank), so the averaged gradient is one process's gradient
        model = U.build_model(U.tiny_cfg(cutmix_prob=0.0))
        total = sum(p.numel() for p in model.parameters())
        fsdp = _wrap(model, mixed_precision)
        units = [m for m in FSDP.fsdp_modules(fsdp)
                 if isinstance(m.module, TransformerBlock)]
        dtypes = []
        units[0].module.attn.qkv.register_forward_pre_hook(
            lambda m, a: dtypes.append(m.weight.dtype))
        optim = OptimWrapper(torch.optim.SGD(fsdp.parameters(), lr=0.1))
        losses = [fsdp.train_step(U.batch(), optim)['loss'].item()
                  for _ in range(STEPS)]
        local = sum(p.numel() for p in fsdp.parameters())
        with FSDP.state_dict_type(
                fsdp, StateDictType.FULL_STATE_DICT,
                FullStateDictConfig(rank0_only=True, offload_to_cpu=False)):
            state = fsdp.state_dict()
        torch.save(dict(losses=losses, local=local, total=total,
                        units=len(units), dtypes=dtypes, state=state,
                        all_units=len(FSDP.fsdp_modules(fsdp))),
                   f'{out}/rank{rank}.pth')
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def reference():
    """One plain process: STEPS SGD steps on the same batch."""
    from mmengine.optim import OptimWrapper
    model = U.build_model(U.tiny_cfg(cutmix_prob=0.0))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    losses = [model.train_step(U.batch(), optim)['loss'].item()
              for _ in range(STEPS)]
    return dict(losses=losses, state=model.state_dict(), init=init)


@pytest.mark.parametrize('world', [1, 2])
def test_fsdp_fp32_steps_equal_one_plain_process(tmp_path, reference,
                                                 world):
    U.run_ranks(_step_worker, world, str(tmp_path), False)
    res = [torch.load(tmp_path / f'rank{r}.pth') for r in range(world)]
    r0 = res[0]
    # one unit per ViT block; BN layers get their own units only under
    # mixed precision (kept in fp32)
    assert r0['units'] == U.DEPTH
    for r in res:  # each rank holds 1/world of the parameters (+ padding)
        assert r['local'] * world >= r['total']
        assert r['local'] * world - r['total'] < world * r['all_units']
        if world > 1:
            assert r['local'] < r['total']
    assert all(r['losses'] == r0['losses'] for r in res)
    assert r0['losses'] == pytest.approx(reference['losses'], rel=1e-6)
    assert r0['losses'][1] < r0['losses'][0]
    state, ref = r0['state'], reference['state']
    assert set(state) == set(ref)  # full, unflattened key names
    moved = 0.
    for k, v in ref.items():
        assert state[k].shape == v.shape, k
        if v.is_floating_point():
            torch.testing.assert_close(state[k], v, rtol=1e-5, atol=2e-6,
                                       msg=k)
            moved = max(moved, (v - reference['init'][k]).abs().max())
    assert moved > 1e-3
    assert all(d == torch.float32 for d in r0['dtypes'])


def test_fsdp_bf16_mixed_precision_on_two_processes(tmp_path, reference):
    U.run_ranks(_step_worker, 2, str(tmp_path), True)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth') for r in range(2))
    # bf16 compute inside the blocks (forward and checkpoint recompute)...
    assert r0['dtypes'] and set(r0['dtypes']) == {torch.bfloat16}
    assert r0['units'] == U.DEPTH and r0['all_units'] > U.DEPTH + 1
    assert r0['losses'] == r1['losses']
    assert r0['losses'] == pytest.approx(reference['losses'], rel=2e-2)
    assert r0['losses'] != reference['losses']
    # ...fp32 master weights, updated like fp32 ones up to bf16 rounding
    worst = 0.
    for k, v in reference['state'].items():
        assert r0['state'][k].dtype == v.dtype, k
        if v.is_floating_point() and 'running_' not in k:
            step = (v - reference['init'][k]).abs().max().item()
            diff = (r0['state'][k] - v).abs().max().item()
            worst = max(worst, diff / max(step, 1e-3))
    assert worst < 0.3


# -------------------------------------------------------------- runner
def _runner_worker(rank, world, root, max_iters, resume):
    from mmengine.config import Config

    from s5_mm.utils.setup_env import build_runner, prepare_scope
    # the runner yapf-formats the config for its log, dump and checkpoint
    # meta: most of this test's time on 2 shared cores, untested here
    Config.pretty_text = property(lambda self: repr(self.to_dict()))
    work = root / 'work'
    cfg = U.runner_cfg(root, work, max_iters,
                       resume_from=work / 'iter_2.pth' if resume else None)
    prepare_scope(cfg)
    runner = build_runner(cfg)
    capture = val_capture_hook()
    runner.register_hook(capture)
    runner.train()
    hub = runner.message_hub
    torch.save(dict(runner=type(runner).__name__,
                    model=type(runner.model).__name__,
                    strategy=type(runner.strategy).__name__,
                    iter=runner.iter,
                    unsup=hub.get_scalar('train/unsup_loss_ce').current(),
                    miou=hub.get_scalar('val/mIoU').current(),
                    val=capture.samples,
                    classes=runner.val_dataloader.dataset.metainfo['classes'],
                    val_size=len(runner.val_dataloader.dataset)),
               root / f'{"resume" if resume else "train"}{rank}.pth')


def test_fsdp_config_trains_saves_and_resumes_through_the_runner(tmp_path):
    write_tiny_s4p_data(tmp_path, np.random.default_rng(0))
    U.run_ranks(_runner_worker, 2, tmp_path, 2, False)
    res = [torch.load(tmp_path / f'train{rank}.pth', weights_only=False)
           for rank in range(2)]
    for r in res:
        assert (r['runner'], r['model'], r['strategy']) == (
            'FlexibleRunner', 'MMFullyShardedDataParallel', 'S5FSDPStrategy')
        assert r['iter'] == 2 and r['unsup'] > 0
    # the logged mIoU (foreground classes, rounded) is that of both ranks'
    # validation predictions together, each sample once
    samples = res[0]['val'] + res[1]['val']
    assert len(res[0]['val']) > 0 and len(samples) == res[0]['val_size']
    pred, label = (np.stack(x) for x in zip(*samples))
    classes = res[0]['classes']
    fg = [i for i, c in enumerate(classes) if c != 'background']
    for r in res:
        assert r['miou'] == pytest.approx(
            miou(pred, label, len(classes), classes=fg), abs=0.006)
    ckpt = torch.load(tmp_path / 'work' / 'iter_2.pth', weights_only=False)
    # a full checkpoint: the plain model loads it strictly
    plain = U.build_model(U.tiny_cfg(), seed=1)
    plain.load_state_dict(ckpt['state_dict'], strict=True)
    opt = ckpt['optimizer']
    names = {n for n, p in plain.named_parameters() if p.requires_grad}
    assert set(opt['state']) == names
    for name, st in opt['state'].items():
        assert float(st['step']) == 2
        assert st['exp_avg'].shape == dict(plain.named_parameters())[
            name].shape
    U.run_ranks(_runner_worker, 2, tmp_path, 3, True)
    res = torch.load(tmp_path / 'resume0.pth', weights_only=False)
    assert res['iter'] == 3
    ckpt3 = torch.load(tmp_path / 'work' / 'iter_3.pth', weights_only=False)
    # AdamW resumed its moments and step counts (a fresh one would be at 1)
    assert {float(st['step']) for st in ckpt3['optimizer']['state'].values()
            } == {3.0}
    assert ckpt3['meta']['iter'] == 3
    k = 'student.backbone.blocks.0.attn.qkv.weight'
    assert not torch.equal(ckpt3['state_dict'][k], ckpt['state_dict'][k])
    assert math.isfinite(res['unsup'])
