"""MMEngine / MMDet samplers whose indices carry per-sample seeds.

Each yields the same indices as its base class, as
:class:`~s5_mm.datasets.seeded_dataset.SampleIndex` values whose seed is
``sample_seed(seed, source, position)``: ``position`` counts the samples of
that source in the global stream that every rank slices (rank r takes
positions r, r + W, ...), so a sample's seed is the same whatever the number
of processes, and the same after a resume. Use them with
:class:`~s5_mm.datasets.seeded_dataset.SeededDataset` around the dataset.
"""
import itertools
from typing import Iterator

from mmdet.datasets.samplers import MultiSourceSampler
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.registry import DATA_SAMPLERS

from ..seeded_dataset import SampleIndex, sample_seed

# mmengine's root registry: mmseg's, mmdet's and mmrotate's fall back to it
_register = DATA_SAMPLERS.register_module()


def _seeded(indices, seed: int, source: int, rank: int, world: int):
    for k, idx in enumerate(indices):
        yield SampleIndex(idx, sample_seed(seed, source, k * world + rank))


@_register
class SeededInfiniteSampler(InfiniteSampler):
    """``InfiniteSampler`` with per-sample seeds (module doc); ``skip``
    (fast resume) is the base class's."""

    def _indices_of_rank(self) -> Iterator[int]:
        return _seeded(super()._indices_of_rank(), self.seed, 0, self.rank,
                       self.world_size)


@_register
class SeededDefaultSampler(DefaultSampler):
    """``DefaultSampler`` (epoch based) with per-sample seeds; the epoch is
    the source key, so a sample gets a new seed every epoch."""

    def __iter__(self) -> Iterator[int]:
        return _seeded(super().__iter__(), self.seed, self.epoch, self.rank,
                       self.world_size)


@_register
class SeededMultiSourceSampler(MultiSourceSampler):
    """``mmdet.MultiSourceSampler`` with per-sample seeds (source key: the
    dataset's place in the ``ConcatDataset``) and a ``skip`` for mmengine's
    fast resume, which otherwise loads every skipped batch when
    ``num_workers > 0``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._start_streams(0)

    def _start_streams(self, steps: int) -> None:
        self.source2inds = {}
        for source, ds in enumerate(self.dataset.datasets):
            stream = _seeded(
                super()._indices_of_rank(len(ds)), self.seed, source,
                self.rank, self.world_size)
            self.source2inds[source] = itertools.islice(
                stream, steps * self.num_per_source[source], None)

    def __iter__(self) -> Iterator[int]:
        while True:
            for source, num in enumerate(self.num_per_source):
                offset = self.cumulative_sizes[source]
                for idx in itertools.islice(self.source2inds[source], num):
                    yield SampleIndex(idx + offset, idx.seed)

    def skip(self, num_samples: int) -> None:
        """Restart at the absolute position ``num_samples`` (per rank, a
        whole number of batches; mmengine's ``skip`` contract)."""
        if num_samples < 0 or num_samples % self.batch_size:
            raise ValueError(
                f'SeededMultiSourceSampler.skip: {num_samples} samples is not '
                f'a whole number of batches of {self.batch_size}')
        self._start_streams(num_samples // self.batch_size)
