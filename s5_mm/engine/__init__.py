from . import hooks, loops, optimizers, runner  # noqa: F401
