"""s5_mm: S5 for OpenMMLab.

Importing the package registers every module (backbones, necks, segmentors,
datasets, transforms, metrics, hooks, optimizer constructors) into the MMSeg
and MMDet registries, so configs only need
``custom_imports=dict(imports=['s5_mm'], allow_failed_imports=False)``.
"""
from .version import __version__
from .utils.compat import (import_openmmlab_datasets,
                           register_checkpoint_safe_globals)

import_openmmlab_datasets()  # before anything imports them
register_checkpoint_safe_globals()
from . import (apis, datasets, engine, evaluation, geo,  # noqa: F401,E402
               models, selection, visualization)

__all__ = ['__version__']
