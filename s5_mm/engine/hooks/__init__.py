from .atomic_checkpoint_hook import AtomicCheckpointHook
from .finite_loss_hook import FiniteLossHook
from .geo_vis_hook import GeoSegVisualizationHook
from .s4p_stats_hook import S4PStatsHook
from .entropy_selection_hook import EntropySelectionHook  # noqa: F401

__all__ = [
    'AtomicCheckpointHook', 'FiniteLossHook', 'GeoSegVisualizationHook',
    'S4PStatsHook'
]
