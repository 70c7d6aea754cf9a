from . import fsdp, hooks, optimizers, runner  # noqa: F401
