"""Reseed the training process's global generators at every iteration, so
that model-side randomness (drop path, dropout) after a resume is the
randomness of a straight run: MMEngine's checkpoints do not hold the
generators' states, and the data pipeline (its own per-sample seeds, see
``SeededDataset``) no longer shares them."""
import logging

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS  # the root: every scope (mmseg, mmrotate)

from s5_mm.datasets.seeded_dataset import sample_seed, seed_all


@HOOKS.register_module()
class IterSeedHook(Hook):
    """Seeds ``random``, NumPy and torch (every device) from (run seed,
    iteration, rank) before each training iteration.

    Args:
        seed (int, optional): default the runner's ``randomness.seed``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, seed=None):
        self.seed = seed

    def before_train(self, runner) -> None:
        if self.seed is None and runner.cfg.get('randomness', {}).get(
                'seed') is None:
            # mmengine builds the sampler before it resumes the checkpoint's
            # seed: a resumed run would draw another sample order
            print_log('IterSeedHook: set randomness.seed (or seed=...) for '
                      'an exact resume; without it the resumed run draws '
                      'another sample order', logger='current',
                      level=logging.WARNING)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        base = runner.seed if self.seed is None else self.seed
        seed_all(sample_seed(base, runner.iter, get_rank()))
