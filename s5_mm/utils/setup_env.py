"""Runner set-up for tools/train.py and tools/test.py: scope dispatch,
gloo DDP without CUDA, the safety hooks, runner building.

A config's ``default_scope`` ('mmseg', 'mmdet' or 'mmrotate') decides which
toolbox's registries resolve its types; s5_mm registers into all of them on
import, so configs only need ``custom_imports`` for s5_mm.
"""
from mmengine.registry import init_default_scope

SEG_SCOPES = ('mmseg', )
DET_SCOPES = ('mmdet', 'mmrotate')


def task_of(cfg):
    """'seg' or 'det', from the config's default_scope."""
    scope = cfg.get('default_scope', 'mmseg')
    if scope in SEG_SCOPES:
        return 'seg'
    if scope in DET_SCOPES:
        return 'det'
    raise ValueError(
        f"config default_scope={scope!r} is not supported; use one of "
        f"{SEG_SCOPES + DET_SCOPES}")


def prepare_scope(cfg):
    """Register the toolbox modules of the config's scope (and s5_mm)."""
    task = task_of(cfg)
    scope = cfg.get('default_scope', 'mmseg')
    init_default_scope(scope)
    if task == 'seg':
        from mmseg.utils import register_all_modules
        register_all_modules(init_default_scope=False)
    else:
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        if scope == 'mmrotate':
            from mmrotate.utils import register_all_modules as reg_rot
            reg_rot(init_default_scope=False)
    import s5_mm  # noqa: F401  (registers s5_mm modules)
    return task


def init_cpu_distributed(cfg):
    """torchrun or srun on a machine without CUDA: start a gloo process group
    first.

    mmengine's init_dist calls ``torch.cuda.set_device`` unconditionally,
    which fails without a GPU; the Runner skips init_dist when a group exists.
    """
    import torch
    import torch.distributed as dist
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available() \
            or dist.is_initialized():
        return
    if launcher == 'slurm':
        _slurm_env()
    dist.init_process_group(backend='gloo')
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    strategy = cfg.get('strategy') or {}
    if str(strategy.get('type', '')).endswith('FSDPStrategy'):
        # FSDPStrategy's default device_id is the CUDA index LOCAL_RANK
        wrapper = strategy.get('model_wrapper') or {}
        wrapper['device_id'] = 'cpu'
        strategy['model_wrapper'] = wrapper
        if strategy.get('state_dict_cfg') == 'full':
            # 'full' offloads to CPU, which segfaults for CPU tensors on 2+
            # gloo ranks (torch 2.11): the same, without the offload
            strategy['state_dict_cfg'] = dict(
                state_dict_type='FULL_STATE_DICT',
                state_dict_config=dict(type='FullStateDictConfig',
                                       rank0_only=True, offload_to_cpu=False),
                optim_state_dict_config=dict(
                    type='FullOptimStateDictConfig', rank0_only=True,
                    offload_to_cpu=False))
        cfg.strategy = strategy
        return
    # DDP of a CPU module takes no device_ids (the Runner's default sets them)
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def _slurm_env():
    """torch's env:// variables from Slurm's, as mmengine's slurm launcher
    sets them (it also needs CUDA): rank, world, local rank, the first host
    of the node list as master unless MASTER_ADDR is set, port 29500 unless
    MASTER_PORT is set."""
    import os
    import subprocess
    env = os.environ
    try:
        rank, world = env['SLURM_PROCID'], env['SLURM_NTASKS']
        nodes = env['SLURM_NODELIST']
    except KeyError as e:
        raise RuntimeError(f'--launcher slurm: {e.args[0]} is not set; '
                           'run through srun (tools/slurm_train.sh)') from e
    env.setdefault('LOCAL_RANK', env.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in env:
        out = subprocess.run(['scontrol', 'show', 'hostname', nodes],
                             capture_output=True, text=True)
        hosts = out.stdout.split()
        if out.returncode or not hosts:
            raise RuntimeError(
                f'--launcher slurm: scontrol could not expand SLURM_NODELIST='
                f'{nodes!r} ({out.stderr.strip()}); set MASTER_ADDR')
        env['MASTER_ADDR'] = hosts[0]
    env.setdefault('MASTER_PORT', '29500')
    env['RANK'], env['WORLD_SIZE'] = rank, world


CHECKPOINT_HOOK_TYPES = ('CheckpointHook', 'mmengine.CheckpointHook')


def add_safety_hooks(cfg):
    """Every training run gets ``FiniteLossHook`` (stop at the first NaN /
    inf loss, before saving) unless the config lists it, and
    ``AtomicCheckpointHook`` in place of mmengine's ``CheckpointHook`` (no
    truncated checkpoint files); a config's own checkpoint hook class is
    kept."""
    hooks = list(cfg.get('custom_hooks') or [])
    names = [str(h.get('type', '')).split('.')[-1] for h in hooks]
    if 'FiniteLossHook' not in names:
        hooks.append(dict(type='FiniteLossHook'))
    cfg.custom_hooks = hooks
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint')
    if ckpt is not None and ckpt.get('type') in CHECKPOINT_HOOK_TYPES:
        ckpt['type'] = 'AtomicCheckpointHook'
    return cfg


def build_runner(cfg):
    """The config's ``runner_type`` if it names one, else mmengine's Runner
    (with :func:`add_safety_hooks`)."""
    import s5_mm.engine.hooks  # noqa: F401  (registers the safety hooks)
    init_cpu_distributed(cfg)
    add_safety_hooks(cfg)
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)
