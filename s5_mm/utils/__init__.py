from .setup_env import (DET_SCOPES, SEG_SCOPES, add_safety_hooks,
                        build_runner, init_cpu_distributed, prepare_scope,
                        task_of)

__all__ = ['SEG_SCOPES', 'DET_SCOPES', 'task_of', 'prepare_scope',
           'init_cpu_distributed', 'add_safety_hooks', 'build_runner']
