"""Data selection after a training stage (S5 stage 1 as a hook)."""
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from s5_mm.registry import HOOKS


@HOOKS.register_module()
class EntropySelectionHook(Hook):
    """Score an unlabelled pool with the just-trained model and select.

    Runs once, after training (``after_train``; not after a later
    ``runner.test()``), on every rank of the run (scoring is sharded, the
    selection runs on rank 0), with the engine of ``tools/select_data.py``.
    The result goes to ``<work_dir>/<out_dir>/selected.txt`` (``path entropy
    cluster`` per line), which a following S4P config reads as the
    ``ann_file`` of its ``UnlabeledImageDataset``; a second run of the same
    stage resumes the scoring from the chunk files there.

    Args:
        pool (str): unlabelled folder or list file.
        labeled (str): labelled images (folder or list file).
        budget (int): images to select.
        out_dir (str): folder under the work dir. Default 'selection'.
        **options: :class:`s5_mm.selection.SelectionOptions` fields
            (``clusters``, ``bg_index``, ``ood_floor``, ``batch_size``...);
            ``input_size`` and the loader default to the config's.
    """
    priority = 'LOWEST'

    def __init__(self, pool: str, labeled: str, budget: int,
                 out_dir: str = 'selection', **options):
        from s5_mm.selection import SelectionOptions
        self.pool, self.labeled = pool, labeled
        self.out_dir = out_dir
        options.setdefault('progress', False)
        # validated now: a bad option fails before training, not after
        self.options = SelectionOptions(budget=budget, **options)
        self.summary: Optional[dict] = None

    def after_train(self, runner) -> None:
        from s5_mm.selection import (DataSelector, image_loader_cfg,
                                     model_input_size)
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        opts = self.options
        if opts.input_size is None:
            opts.input_size = model_input_size(runner.cfg)
        out = osp.join(runner.work_dir, self.out_dir)
        was_training = model.training
        selector = DataSelector(
            model, image_loader_cfg(runner.cfg), opts, out,
            model_id=f'{runner.work_dir}@iter{runner.iter}')
        try:
            self.summary = selector.run(self.pool, self.labeled)
        finally:
            model.train(was_training)
        if self.summary is not None:
            print_log(f'EntropySelectionHook: selected '
                      f'{self.summary["selected"]} images -> {out}/'
                      'selected.txt', logger='current')
