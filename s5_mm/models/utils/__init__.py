from . import channels  # noqa: F401
from .ckpt_convert import (ConversionResult, compare_keys, convert_mae,
                           convert_s5_official, unwrap_state_dict)
from .cutmix import (boxes_to_masks, cutmix, random_derangement,
                     sample_cutmix_boxes)
from .pos_embed import adapt_pos_embed, resize_pos_embed, strip_cls_slot
from .routing import (expert_ids, expert_index_map, group_by_dataset,
                      sample_dataset_names, take_samples)

__all__ = [
    'ConversionResult', 'compare_keys', 'convert_mae', 'convert_s5_official',
    'unwrap_state_dict', 'adapt_pos_embed', 'resize_pos_embed',
    'strip_cls_slot', 'boxes_to_masks', 'cutmix', 'random_derangement',
    'sample_cutmix_boxes', 'expert_ids', 'expert_index_map',
    'group_by_dataset', 'sample_dataset_names', 'take_samples'
]
