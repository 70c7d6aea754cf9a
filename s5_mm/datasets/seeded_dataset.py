"""Per-sample random seeds for data pipelines: resume- and split-exact
augmentation.

A pipeline's random transforms draw from the global ``random``, NumPy and
torch generators of the process (or dataloader worker) that runs it, so what
a sample gets depends on what ran before in that process. After a resume the
sampler skips ahead without running the pipeline, and with two processes the
same samples are loaded in other orders, so augmentations differ from a
straight one-process run.

The seeded samplers (:mod:`s5_mm.datasets.samplers`) yield
:class:`SampleIndex` values: the dataset index plus a seed derived from
(sampler seed, source, position of the sample in the global, rank-free
stream). :class:`SeededDataset` runs the wrapped dataset's ``__getitem__``
with the three generators seeded from it and restores them afterwards, so a
sample's augmentation depends only on its place in the stream.
"""
import contextlib
import random
from typing import Optional

import numpy as np
import torch

from mmengine.registry import DATASETS


class SampleIndex(int):
    """A dataset index that carries the seed of its pipeline run."""

    def __new__(cls, index: int, seed: int):
        obj = super().__new__(cls, index)
        obj.seed = int(seed)
        return obj

    def __reduce__(self):  # dataloader workers receive indices pickled
        return SampleIndex, (int(self), self.seed)

    def __repr__(self) -> str:
        return f'SampleIndex({int(self)}, seed={self.seed})'


def sample_seed(*keys: int) -> int:
    """A 64-bit seed mixed from integer keys (NumPy's SeedSequence: nearby
    keys give unrelated streams)."""
    hi, lo = np.random.SeedSequence([int(k) for k in keys]).generate_state(
        2, np.uint32)
    return (int(hi) << 32 | int(lo)) & (2**63 - 1)


def seed_all(seed: int) -> None:
    """Seed ``random``, NumPy (which takes 32 bits) and torch (every
    device) from one 63-bit seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded_rng(seed: int):
    """:func:`seed_all` for the block, then put the CPU generators' previous
    states back."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        seed_all(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


# mmengine's root registry: mmseg's, mmdet's and mmrotate's fall back to it
@DATASETS.register_module()
class SeededDataset:
    """Wraps a dataset; a :class:`SampleIndex` runs its pipeline seeded.

    Plain ``int`` indices (any other sampler, validation) pass through
    unseeded. Attributes (``metainfo``, ``datasets``, ``cumulative_sizes``,
    ...) are the wrapped dataset's, so samplers and loops that read them see
    no difference::

        dataset=dict(type='SeededDataset', dataset=dict(type='ConcatDataset',
                     datasets=[...]))
        sampler=dict(type='SeededMultiSourceSampler', ...)

    Args:
        dataset (dict | Dataset): the wrapped dataset or its config.
    """

    def __init__(self, dataset, **unknown):
        if unknown:
            # e.g. a derived config still setting train_dataloader.dataset.X
            raise TypeError(
                f'SeededDataset takes only dataset=..., got {sorted(unknown)};'
                ' the wrapped dataset\'s keys are one level down: '
                'train_dataloader.dataset.dataset.<key>')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not hasattr(dataset, '__getitem__'):
            raise TypeError('SeededDataset: dataset must be a dataset or its '
                            f'config dict, got {type(dataset).__name__}')
        self.dataset = dataset

    def __getitem__(self, idx):
        seed: Optional[int] = getattr(idx, 'seed', None)
        if seed is None:
            return self.dataset[idx]
        with seeded_rng(seed):
            return self.dataset[int(idx)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):
        # 'dataset' before it is set (unpickling): no recursion. Special
        # names (__getitems__, __deepcopy__, ...) are not forwarded: the
        # inner dataset's would bypass the seeding or copy the wrong object.
        if name == 'dataset' or name.startswith('__'):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f'SeededDataset({self.dataset!r})'


def inner_dataset_cfg(cfg):
    """The wrapped dataset config of a ``SeededDataset`` config, else
    ``cfg`` itself (tools that edit the training dataset's fields)."""
    while isinstance(cfg, dict) and \
            str(cfg.get('type', '')).split('.')[-1] == 'SeededDataset':
        cfg = cfg['dataset']
    return cfg


def unwrap_dataset(dataset):
    """The dataset inside (nested) :class:`SeededDataset` wrappers; code
    that tests the dataset's class must look here."""
    while isinstance(dataset, SeededDataset):
        dataset = dataset.dataset
    return dataset
