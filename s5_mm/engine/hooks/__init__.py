from .geo_vis_hook import GeoSegVisualizationHook
from .s4p_stats_hook import S4PStatsHook

__all__ = ['GeoSegVisualizationHook', 'S4PStatsHook']
