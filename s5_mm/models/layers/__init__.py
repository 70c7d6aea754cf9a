from .moe_ffn import ExpertRouting, MoEFFN, split_plain_fc2
from .norm import LayerNorm2d, build_norm_2d

__all__ = ['ExpertRouting', 'MoEFFN', 'split_plain_fc2', 'LayerNorm2d',
           'build_norm_2d']
