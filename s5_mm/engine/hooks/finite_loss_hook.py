"""Stop training at the first non-finite loss, before anything saves it."""
import math
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


# mmengine's root registry: found from the mmseg, mmdet and mmrotate scopes
@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the iteration and the loss keys
    when a loss of a training step is NaN or infinite.

    It runs right after the step, before the logger, the checkpoint hook
    (``VERY_LOW``) and validation, so no checkpoint of the broken weights is
    written and ``last_checkpoint`` keeps pointing at the last good one.
    ``s5_mm.utils.build_runner`` adds it to every config that lacks it. The
    losses are already synchronised to the host by mmengine's
    ``RuntimeInfoHook`` (it logs them every step), so the check costs nothing
    measurable.
    """
    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        # a resumed message hub names the checkpoint as it was saved, maybe
        # in another folder: report the file this run started from instead
        self._start = runner.message_hub.get_info('last_ckpt')
        cfg = getattr(runner, 'cfg', None) or {}
        self._resumed = cfg.get('load_from') if cfg.get('resume') else None

    def _last_checkpoint(self, runner) -> str:
        last = runner.message_hub.get_info('last_ckpt')
        if last == getattr(self, '_start', None):
            last = getattr(self, '_resumed', None)
        if not last:
            return 'none saved by this run'
        return last if '://' in last else osp.abspath(last)

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        bad = {}
        for key, value in (outputs or {}).items():
            if 'loss' not in key:
                continue
            if hasattr(value, 'detach'):
                value = value.detach().float()
                if value.numel() != 1:
                    value = value.sum()
            value = float(value)
            if not math.isfinite(value):
                bad[key] = value
        if bad:
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: {bad}; '
                'training stopped before saving (lower the learning rate, '
                'enable gradient clipping or check the inputs); last '
                f'checkpoint: {self._last_checkpoint(runner)}')
