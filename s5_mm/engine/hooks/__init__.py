from .s4p_stats_hook import S4PStatsHook

__all__ = ['S4PStatsHook']
