from .ckpt_convert import (ConversionResult, check_against_config,
                           compare_keys, convert_mae, convert_s5_official,
                           load_checkpoint_state)
from .routing import (expert_ids, expert_index_map,  # noqa: F401
                      group_by_dataset, sample_dataset_names, take_samples)

__all__ = ['ConversionResult', 'check_against_config', 'compare_keys',
           'convert_mae', 'convert_s5_official', 'load_checkpoint_state']
