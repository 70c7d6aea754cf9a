from . import channels  # noqa: F401
from .ckpt_convert import (ConversionResult, check_against_config,
                           compare_keys, convert_mae, convert_s5_official,
                           load_checkpoint_state)

__all__ = ['ConversionResult', 'check_against_config', 'compare_keys',
           'convert_mae', 'convert_s5_official', 'load_checkpoint_state']
