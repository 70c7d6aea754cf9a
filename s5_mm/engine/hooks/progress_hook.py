"""A console progress bar over a run's training iterations."""
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from s5_mm.registry import HOOKS


@HOOKS.register_module()
class TrainProgressHook(Hook):
    """tqdm bar from ``runner.iter`` to ``max_iters`` (rank 0 only).

    The logger hook prints every ``interval`` iterations; this shows the
    steps in between (and the ETA) for demos that run for minutes.
    """
    priority = 'VERY_LOW'

    def __init__(self, desc: str = 'train'):
        self.desc = desc
        self._bar = None

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        from tqdm import tqdm
        self._bar = tqdm(total=runner.max_iters, initial=runner.iter,
                         desc=self.desc, unit='it', dynamic_ncols=True)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def after_train(self, runner) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
