"""Data selection (S5 stage 1, the RS4P builder): foreground entropy over
valid pixels, K-Means diversity quotas, distributed resumable scoring."""
from .diversity import (assign_cosine, fill_quotas, fit_kmeans,
                        largest_remainder_quotas, ood_floor_from_labelled,
                        select_diverse)
from .scoring import SegScorer, foreground_entropy, pixel_entropy, \
    pooled_feature
from .selector import (DataSelector, SelectionError, SelectionOptions,
                       image_loader_cfg, model_input_size)
from .shards import ChunkStore, PoolSource, merge_chunks, rank_chunks

__all__ = [
    'assign_cosine', 'fill_quotas', 'fit_kmeans', 'largest_remainder_quotas',
    'ood_floor_from_labelled', 'select_diverse', 'SegScorer',
    'foreground_entropy', 'pixel_entropy', 'pooled_feature', 'DataSelector',
    'SelectionError', 'SelectionOptions', 'image_loader_cfg',
    'model_input_size', 'ChunkStore', 'PoolSource', 'merge_chunks',
    'rank_chunks'
]
