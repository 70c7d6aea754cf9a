"""IterSeedHook: the global generators depend on (seed, iteration) only,
and a config without a fixed seed is warned about."""
import logging
import random
from types import SimpleNamespace

import numpy as np
import torch
from mmengine.config import Config

from s5_mm.engine.hooks import IterSeedHook


def draw():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def runner(it, seed=0, cfg_seed=0):
    return SimpleNamespace(iter=it, seed=seed,
                           cfg=Config(dict(randomness=dict(seed=cfg_seed))))


def test_generators_follow_the_iteration():
    hook = IterSeedHook()
    hook.before_train_iter(runner(7), 0)
    a = draw()
    torch.manual_seed(123)  # whatever ran before
    hook.before_train_iter(runner(7), 0)
    assert draw() == a
    hook.before_train_iter(runner(8), 0)
    assert draw() != a
    hook.before_train_iter(runner(7, seed=1), 0)
    assert draw() != a
    IterSeedHook(seed=1).before_train_iter(runner(7, seed=0), 0)
    b = draw()
    hook.before_train_iter(runner(7, seed=1), 0)
    assert draw() == b


def test_warns_without_a_fixed_seed(monkeypatch):
    import s5_mm.engine.hooks.iter_seed_hook as mod
    said = []
    monkeypatch.setattr(mod, 'print_log',
                        lambda msg, **kw: said.append((msg, kw['level'])))
    IterSeedHook().before_train(runner(0, cfg_seed=None))
    assert len(said) == 1 and 'set randomness.seed' in said[0][0]
    assert said[0][1] == logging.WARNING
    IterSeedHook().before_train(runner(0, cfg_seed=3))
    IterSeedHook(seed=5).before_train(runner(0, cfg_seed=None))
    assert len(said) == 1
