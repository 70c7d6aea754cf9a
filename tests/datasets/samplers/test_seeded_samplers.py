"""Seeded samplers: the (index, seed) pairs do not depend on the number of
processes, survive skip(), and SeededDataset runs the pipeline seeded."""
import itertools
import random

import mmdet.datasets.samplers.multi_source_sampler as mss
import mmengine.dataset.sampler as mms
import numpy as np
import pytest
import torch

from s5_mm.datasets.samplers import (SeededDefaultSampler,
                                     SeededInfiniteSampler,
                                     SeededMultiSourceSampler)
from s5_mm.datasets.seeded_dataset import SampleIndex, SeededDataset


class Concat:
    def __init__(self, *sizes):
        self.datasets = [list(range(n)) for n in sizes]
        self.cumulative_sizes = list(itertools.accumulate(sizes))

    def __len__(self):
        return self.cumulative_sizes[-1]


def build(monkeypatch, cls, rank, world, *args, **kwargs):
    for mod in (mms, mss):
        monkeypatch.setattr(mod, 'get_dist_info', lambda: (rank, world))
    return cls(*args, **kwargs)


def pairs(sampler, n):
    return [(int(i), i.seed) for i in itertools.islice(iter(sampler), n)]


def test_multi_source_two_ranks_draw_what_one_process_draws(monkeypatch):
    ds = Concat(5, 7)
    one = pairs(build(monkeypatch, SeededMultiSourceSampler, 0, 1, ds,
                      batch_size=6, source_ratio=[1, 2], seed=3), 18)
    ranks = [pairs(build(monkeypatch, SeededMultiSourceSampler, r, 2, ds,
                         batch_size=3, source_ratio=[1, 2], seed=3), 9)
             for r in (0, 1)]
    for step in range(3):  # batch by batch, the same samples and seeds
        joint = ranks[0][3 * step:3 * step + 3] + \
            ranks[1][3 * step:3 * step + 3]
        assert sorted(joint) == sorted(one[6 * step:6 * step + 6])
    # labelled (first 2 of 6) and unlabelled parts stay apart
    assert all(i < 5 for i, _ in one[:2]) and all(i >= 5 for i, _ in one[2:6])
    # a sample drawn twice (another pass) gets another seed
    seeds = {}
    for i, s in one:
        seeds.setdefault(i, set()).add(s)
    assert any(len(v) > 1 for v in seeds.values())
    assert len({s for _, s in one}) == len(one)


def test_multi_source_skip_resumes_the_stream(monkeypatch):
    ds = Concat(5, 7)
    kw = dict(batch_size=4, source_ratio=[1, 1], seed=0)
    full = pairs(build(monkeypatch, SeededMultiSourceSampler, 1, 2, ds,
                       **kw), 20)
    s = build(monkeypatch, SeededMultiSourceSampler, 1, 2, ds, **kw)
    s.skip(12)
    assert pairs(s, 8) == full[12:]
    with pytest.raises(ValueError, match='whole number of batches of 4'):
        s.skip(6)


def test_infinite_and_default_samplers(monkeypatch):
    ds = list(range(7))
    one = pairs(build(monkeypatch, SeededInfiniteSampler, 0, 1, ds, seed=1),
                10)
    r0, r1 = (pairs(build(monkeypatch, SeededInfiniteSampler, r, 2, ds,
                          seed=1), 5) for r in (0, 1))
    assert sorted(r0 + r1) == sorted(one)
    s = build(monkeypatch, SeededInfiniteSampler, 0, 2, ds, seed=1)
    s.skip(2)
    assert pairs(s, 3) == r0[2:]

    d = build(monkeypatch, SeededDefaultSampler, 0, 1, ds, seed=1)
    e0 = pairs(d, 7)
    assert sorted(i for i, _ in e0) == ds
    d.set_epoch(1)
    assert {s for _, s in e0}.isdisjoint(s for _, s in pairs(d, 7))


class Noisy:
    """A 'pipeline' that draws from all three global generators."""

    def __getitem__(self, idx):
        return (random.random(), float(np.random.rand()),
                float(torch.rand(())))

    def __len__(self):
        return 3


def test_seeded_dataset_runs_seeded_and_restores_the_generators():
    ds = SeededDataset(Noisy())
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    expected_after = (random.random(), float(np.random.rand()),
                      float(torch.rand(())))
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    a = ds[SampleIndex(1, seed=42)]
    assert ds[SampleIndex(2, seed=42)] == a  # the seed decides, not idx
    assert ds[SampleIndex(1, seed=43)] != a
    # the process's own streams went on as if nothing had run
    assert (random.random(), float(np.random.rand()),
            float(torch.rand(()))) == expected_after
    assert ds[1] != ds[1]  # plain ints: unseeded
    assert len(ds) == 3


def test_sample_index_pickles_with_its_seed():
    import pickle
    i = pickle.loads(pickle.dumps(SampleIndex(4, 99)))
    assert (int(i), i.seed, type(i)) == (4, 99, SampleIndex)


def test_seeded_dataset_names_what_it_does_not_take():
    with pytest.raises(TypeError, match=r"\['data_root'\].*"
                       r"train_dataloader\.dataset\.dataset\.<key>"):
        SeededDataset(dataset=Noisy(), data_root='data/x')
    with pytest.raises(TypeError, match='got int'):
        SeededDataset(dataset=3)

    # special names are not forwarded: torch's DataLoader would call the
    # inner batch fetch and skip the seeding
    class Batched(Noisy):
        def __getitems__(self, idx):
            return [self[i] for i in idx]

    wrapped = SeededDataset(Batched())
    assert not hasattr(wrapped, '__getitems__')
    assert wrapped.__len__() == 3
