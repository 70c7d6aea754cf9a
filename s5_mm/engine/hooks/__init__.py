from .atomic_checkpoint_hook import AtomicCheckpointHook
from .finite_loss_hook import FiniteLossHook
from .geo_vis_hook import GeoSegVisualizationHook
from .s4p_stats_hook import S4PStatsHook

__all__ = [
    'AtomicCheckpointHook', 'FiniteLossHook', 'GeoSegVisualizationHook',
    'S4PStatsHook'
]
