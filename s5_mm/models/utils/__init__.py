from .ckpt_convert import (ConversionResult, check_against_config,
                           compare_keys, convert_mae, convert_s5_official,
                           load_checkpoint_state)
from .cutmix import (boxes_to_masks, cutmix, random_derangement,
                     sample_cutmix_boxes)

__all__ = ['ConversionResult', 'check_against_config', 'compare_keys',
           'convert_mae', 'convert_s5_official', 'load_checkpoint_state',
           'boxes_to_masks', 'cutmix', 'random_derangement',
           'sample_cutmix_boxes']
