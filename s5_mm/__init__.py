"""s5_mm: S5 for OpenMMLab.

Importing the package registers every module (backbones, necks, segmentors,
datasets, transforms, metrics, hooks, optimizer constructors) into the MMSeg
and MMDet registries, so configs only need
``custom_imports=dict(imports=['s5_mm'], allow_failed_imports=False)``.
"""
from .version import __version__
from . import (datasets, engine, evaluation, geo, models,  # noqa: F401,E402
               visualization)
from . import selection  # noqa: F401,E402

__all__ = ['__version__']
