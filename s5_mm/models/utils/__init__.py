from . import channels  # noqa: F401
from .ckpt_convert import (ConversionResult, check_against_config,
                           compare_keys, convert_mae, convert_s5_official,
                           load_checkpoint_state)
from .routing import (expert_ids, expert_index_map, group_by_dataset,
                      sample_dataset_names, take_samples)
from .cutmix import (boxes_to_masks, cutmix, random_derangement,
                     sample_cutmix_boxes)

__all__ = ['ConversionResult', 'check_against_config', 'compare_keys',
           'convert_mae', 'convert_s5_official', 'load_checkpoint_state',
           'boxes_to_masks', 'cutmix', 'random_derangement',
           'sample_cutmix_boxes', 'expert_ids', 'expert_index_map',
           'group_by_dataset', 'sample_dataset_names', 'take_samples']
