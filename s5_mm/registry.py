"""Registries s5_mm registers into.

Segmentation modules live in MMSeg's registries (``default_scope='mmseg'``).
Modules that detection configs need too (the ViT, the neck) are registered
into MMDet's ``MODELS`` as well, so ``type='S5ViT'`` resolves in both scopes.
"""
from mmdet.registry import MODELS as DET_MODELS
from mmseg.registry import (DATASETS, HOOKS, METRICS, MODELS,
                            OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS,
                            VISUALIZERS)

__all__ = [
    'DATASETS', 'HOOKS', 'METRICS', 'MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'TRANSFORMS', 'VISUALIZERS', 'DET_MODELS', 'register_seg_and_det'
]


def register_seg_and_det(cls):
    """Class decorator: register ``cls`` in MMSeg's and MMDet's MODELS."""
    MODELS.register_module(module=cls)
    DET_MODELS.register_module(module=cls)
    return cls
