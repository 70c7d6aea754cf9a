from .seeded_samplers import (SeededDefaultSampler, SeededInfiniteSampler,
                              SeededMultiSourceSampler)

__all__ = [
    'SeededDefaultSampler', 'SeededInfiniteSampler', 'SeededMultiSourceSampler'
]
