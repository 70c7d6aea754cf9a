"""Two fixes for clean logs, applied when s5_mm is imported.

1. The OneDL OpenMMLab forks report a missing optional OneDL SDK with
   ``print_log('Could not import OneDL', level=logging.DEBUG)`` and no
   logger, which mmengine prints regardless of the level; every user log
   starts with those lines. Their dataset packages are imported here once,
   with exactly that message sent to Python logging at DEBUG level.
2. Checkpoints the Runner writes hold numpy scalars (e.g. the best score of
   ``save_best``, a float32) whose dtype classes mmengine's weights_only
   allowlist lacks, so each load failed and fell back to
   ``weights_only=False`` with a warning. Those classes are registered as
   torch safe globals.
"""
import contextlib
import importlib
import importlib.util
import logging

ONEDL_MESSAGE = 'Could not import OneDL'
# the packages whose __init__ tries the OneDL modules
ONEDL_PACKAGES = ('mmseg.datasets', 'mmdet.datasets', 'mmrotate.datasets',
                  'mmpretrain.datasets')
_log = logging.getLogger(__name__)


@contextlib.contextmanager
def _onedl_message_to_debug_log():
    import mmengine.logging as mm_logging
    original = mm_logging.print_log

    def print_log(msg, logger=None, level=logging.INFO):
        # the packages import print_log inside their except blocks, so they
        # pick this one up
        if logger is None and str(msg).startswith(ONEDL_MESSAGE):
            _log.debug(msg)
        else:
            original(msg, logger=logger, level=level)

    mm_logging.print_log = print_log
    try:
        yield
    finally:
        mm_logging.print_log = original


def import_openmmlab_datasets() -> None:
    """Import the installed OpenMMLab dataset packages without the OneDL
    message (later imports, e.g. by registry scopes, hit the module cache)."""
    with _onedl_message_to_debug_log():
        for name in ONEDL_PACKAGES:
            if importlib.util.find_spec(name.split('.')[0]) is not None:
                importlib.import_module(name)


def checkpoint_safe_globals() -> list:
    """mmengine's weights_only allowlist plus the dtype classes of every
    numpy bool / integer / float / complex type."""
    import numpy as np
    from mmengine.runner.checkpoint import get_torch_safe_globals
    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
             np.uint16, np.uint32, np.uint64, np.float16, np.float32,
             np.float64, np.complex64, np.complex128)
    return get_torch_safe_globals() + [type(np.dtype(k)) for k in kinds]


def register_checkpoint_safe_globals() -> None:
    import torch

    # As (global, full name) pairs: torch's safe_globals context, which
    # mmengine's loader enters with the same bare globals, removes those on
    # exit, and would take bare registrations with them.
    torch.serialization.add_safe_globals([
        (g, f'{g.__module__}.{g.__qualname__}')
        for g in checkpoint_safe_globals()
    ])
