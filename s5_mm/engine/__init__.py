from . import hooks, optimizers  # noqa: F401
from . import loops  # noqa: F401
