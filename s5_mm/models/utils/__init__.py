from .ckpt_convert import (ConversionResult, compare_keys, convert_mae,
                           convert_s5_official, unwrap_state_dict)
from .pos_embed import adapt_pos_embed, resize_pos_embed, strip_cls_slot

__all__ = ['ConversionResult', 'compare_keys', 'convert_mae',
           'convert_s5_official', 'unwrap_state_dict', 'adapt_pos_embed',
           'resize_pos_embed', 'strip_cls_slot']
