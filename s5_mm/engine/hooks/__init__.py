from .s4p_stats_hook import S4PStatsHook
from .entropy_selection_hook import EntropySelectionHook  # noqa: F401

__all__ = ['S4PStatsHook']
