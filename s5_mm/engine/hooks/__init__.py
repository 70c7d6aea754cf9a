from .mdf_check_hook import MultiDatasetCheckHook
from .s4p_stats_hook import S4PStatsHook

__all__ = ['MultiDatasetCheckHook', 'S4PStatsHook']
