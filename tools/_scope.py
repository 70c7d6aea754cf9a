"""Shared by tools/train.py and tools/test.py: scope dispatch.

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


def build_runner(cfg):
    """The config's ``runner_type`` if it names one, else mmengine's Runner."""
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)
