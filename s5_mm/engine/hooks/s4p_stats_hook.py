"""Pseudo-label statistics and loss sanity for S4P training."""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from s5_mm.registry import HOOKS


@HOOKS.register_module()
class S4PStatsHook(Hook):
    """Log per-class pseudo-label shares, warn on collapse, stop on NaN.

    The segmentor counts confident pseudo-labels per class on the device;
    this hook reads the counts once every ``interval`` iterations (one host
    sync) and logs ``train/pl_share/<class>`` scalars. A class holding more
    than ``collapse_share`` of the confident pixels is reported as a likely
    collapse towards it. Non-finite losses raise FloatingPointError naming the
    loss key (the values are already on the host by then).
    """
    priority = 'BELOW_NORMAL'

    def __init__(self, interval: int = 50, collapse_share: float = 0.9):
        self.interval = interval
        self.collapse_share = collapse_share
        self.last_shares: Optional[dict] = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        for key, value in (outputs or {}).items():
            if 'loss' not in key:
                continue
            if hasattr(value, 'detach'):
                value = value.detach()
            value = float(value)
            if not math.isfinite(value):
                raise FloatingPointError(
                    f'S4P: {key} is {value} at iteration '
                    f'{runner.iter + 1}; lower the learning rate or check '
                    'the inputs')
        if not self.every_n_train_iters(runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'pop_pseudo_label_counts'):
            return
        counts = model.pop_pseudo_label_counts().double().cpu()
        total = float(counts.sum())
        if total <= 0:
            return
        classes = (runner.train_dataloader.dataset.metainfo or {}).get(
            'classes') if hasattr(runner, 'train_dataloader') else None
        names = list(classes) if classes and len(classes) == len(
            counts) else [str(i) for i in range(len(counts))]
        shares = {n: float(c) / total for n, c in zip(names, counts)}
        self.last_shares = shares
        for name, share in shares.items():
            runner.message_hub.update_scalar(f'train/pl_share/{name}', share)
        top = max(shares, key=shares.get)
        text = ', '.join(f'{n}: {s:.3f}' for n, s in shares.items())
        print_log(f'S4P pseudo-label shares (iter {runner.iter + 1}): {text}',
                  logger='current')
        if shares[top] > self.collapse_share:
            print_log(
                f'S4P: {shares[top]:.1%} of confident pseudo-labels are '
                f'{top!r}: likely collapse towards it (consider a supervised '
                f'warm-up, an EMA teacher or a lower unsup weight)',
                logger='current', level=30)
