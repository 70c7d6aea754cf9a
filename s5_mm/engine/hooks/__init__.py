from .atomic_checkpoint_hook import AtomicCheckpointHook
from .entropy_selection_hook import EntropySelectionHook
from .finite_loss_hook import FiniteLossHook
from .geo_vis_hook import GeoSegVisualizationHook
from .iter_seed_hook import IterSeedHook
from .mdf_check_hook import MultiDatasetCheckHook
from .progress_hook import TrainProgressHook
from .s4p_stats_hook import S4PStatsHook

__all__ = [
    'AtomicCheckpointHook', 'EntropySelectionHook', 'FiniteLossHook',
    'GeoSegVisualizationHook', 'IterSeedHook', 'MultiDatasetCheckHook',
    'S4PStatsHook', 'TrainProgressHook'
]
