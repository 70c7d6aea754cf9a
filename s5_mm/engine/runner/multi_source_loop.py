"""Training loop for multi-source batches counted in epochs of the longest
dataset (S5 MoE-MDF: every dataset repeated to the longest, 100 epochs).

``mmdet.MultiSourceSampler`` is infinite, so the loop is iteration based;
``max_epochs`` (and ``val_interval_epochs``) are converted to iterations
from the dataset sizes, the samples each dataset gives per step and the
number of processes, once the dataloader is built::

    train_cfg = dict(type='MultiSourceTrainLoop', max_epochs=100,
                     val_interval_epochs=10)

One epoch = ``max_i ceil(len(dataset_i) / (n_i * world_size))`` steps, with
``n_i`` the samples of dataset ``i`` per step and process. Schedulers
without ``end`` run to the computed ``max_iters``.
"""
import math
from typing import Dict, Optional, Union

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import LOOPS
from torch.utils.data import DataLoader


def iters_per_epoch(dataloader: DataLoader,
                    epoch_source: Optional[int] = None) -> int:
    """Steps until every dataset of the loader was drawn once (see the
    module doc), or only dataset ``epoch_source``; a plain loader:
    ``ceil(len / (batch * world))``."""
    sampler = dataloader.sampler
    dataset = dataloader.dataset
    world = int(getattr(sampler, 'world_size', 1) or 1)
    per_source = getattr(sampler, 'num_per_source', None)
    parts = getattr(dataset, 'datasets', None)
    if per_source is not None and parts is not None:
        if epoch_source is not None:
            if not 0 <= epoch_source < len(parts) or \
                    per_source[epoch_source] <= 0:
                raise ValueError(
                    f'MultiSourceTrainLoop: epoch_source={epoch_source} is '
                    f'not a drawn dataset (samples per step '
                    f'{list(per_source)})')
            n = per_source[epoch_source]
            return math.ceil(len(parts[epoch_source]) / (n * world))
        steps = [math.ceil(len(d) / (n * world))
                 for d, n in zip(parts, per_source) if n > 0]
        if not steps:
            raise ValueError('MultiSourceTrainLoop: no dataset is drawn '
                             f'(samples per step {list(per_source)})')
        return max(steps)
    batch = dataloader.batch_size or 1
    return max(1, math.ceil(len(dataset) / (batch * world)))


@LOOPS.register_module()
class MultiSourceTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose length and validation interval may be
    given in epochs of the longest dataset (module doc).

    Args:
        max_epochs (int, optional): training length in epochs.
        max_iters (int, optional): or in iterations (exactly one of both).
        val_interval_epochs (int, optional): validation interval in epochs;
            else ``val_interval`` (iterations, default one epoch).
        epoch_source (int, optional): index of the dataset whose pass is an
            epoch; default the longest.
        Other arguments as :class:`mmengine.runner.IterBasedTrainLoop`.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_epochs: Optional[int] = None,
                 max_iters: Optional[int] = None,
                 val_begin: int = 1,
                 val_interval: Optional[int] = None,
                 val_interval_epochs: Optional[int] = None,
                 epoch_source: Optional[int] = None,
                 **kwargs) -> None:
        if (max_epochs is None) == (max_iters is None):
            raise ValueError('MultiSourceTrainLoop: give exactly one of '
                             f'max_epochs ({max_epochs}) and max_iters '
                             f'({max_iters})')
        if val_interval is not None and val_interval_epochs is not None:
            raise ValueError('MultiSourceTrainLoop: give val_interval or '
                             'val_interval_epochs, not both')
        if isinstance(dataloader, dict):
            # as BaseLoop does; built here because the length depends on it
            diff_rank_seed = runner._randomness_cfg.get(
                'diff_rank_seed', False)
            dataloader = runner.build_dataloader(
                dataloader, seed=runner.seed, diff_rank_seed=diff_rank_seed)
        self.iters_per_epoch = iters_per_epoch(dataloader, epoch_source)
        if max_iters is None:
            max_iters = int(max_epochs) * self.iters_per_epoch
        if val_interval is None:
            val_interval = self.iters_per_epoch * int(val_interval_epochs or 1)
        self._epochs_to_iters(runner, max_iters / self.iters_per_epoch)
        print_log(f'MultiSourceTrainLoop: {self.iters_per_epoch} iterations '
                  f'per epoch, {max_iters} iterations, validation every '
                  f'{val_interval}', logger='current')
        super().__init__(runner, dataloader, max_iters=int(max_iters),
                         val_begin=val_begin, val_interval=int(val_interval),
                         **kwargs)

    def _epochs_to_iters(self, runner, max_epochs: float) -> None:
        """Epoch-based scheduler configs with ``convert_to_iter_based``
        get this loop's epoch length (mmengine would use ``len(dataloader)``,
        the concatenated size, wrong for a multi-source sampler) and, without
        ``end``, the training length in epochs (an iteration loop counts one
        epoch). The runner builds schedulers after the loop, from these
        configs."""
        cfgs = runner.param_schedulers
        if cfgs is None:
            return
        groups = cfgs.values() if isinstance(cfgs, dict) else [cfgs]
        for group in groups:
            for cfg in group if isinstance(group, (list, tuple)) else [group]:
                if not isinstance(cfg, dict) or not cfg.get(
                        'convert_to_iter_based', False):
                    continue
                cfg['epoch_length'] = self.iters_per_epoch
                cfg.setdefault('end', max_epochs)
