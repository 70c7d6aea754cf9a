"""Helpers for the test suite."""
from s5_mm.utils.tools import load_tool

from .s4p_data import use_tiny_s4p_data, write_tiny_s4p_data

from ._utils import (TinyIdentityBackbone, build_tiny_mdf_segmentor,
                     build_tiny_segmentor, build_tiny_vit,
                     identity_segmentor_cfg, make_toy_seg_data,
                     save_segmentor_checkpoint, tiny_mdf_segmentor_cfg,
                     tiny_segmentor_cfg, tiny_uper_head_cfg, tiny_vit_arch,
                     toy_iter_schedule, toy_label, toy_s4p_pipelines,
                     toy_s4p_random_pipelines)

__all__ = [
    'load_tool', 'TinyIdentityBackbone', 'build_tiny_mdf_segmentor',
    'build_tiny_segmentor', 'build_tiny_vit', 'identity_segmentor_cfg',
    'make_toy_seg_data', 'save_segmentor_checkpoint',
    'tiny_mdf_segmentor_cfg', 'tiny_segmentor_cfg', 'tiny_uper_head_cfg',
    'tiny_vit_arch', 'toy_iter_schedule', 'toy_label', 'toy_s4p_pipelines',
    'toy_s4p_random_pipelines', 'use_tiny_s4p_data',
    'write_tiny_s4p_data'
]
