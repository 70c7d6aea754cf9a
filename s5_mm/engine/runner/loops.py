"""Val/test loops that score the student and, if there is one, the teacher.

As mmdet's ``TeacherStudentValLoop`` (each network in turn through
``semi_test_cfg['predict_on']``, metrics prefixed ``teacher/`` and
``student/``), but also for models without an EMA teacher (S4P's 'self'
mode: the student alone), and ``run()`` returns the metrics, so that
``runner.test()`` gives both figures in one call. Prediction files of the
metrics (``output_dir``, ``tools/test.py --out``) go into a subfolder per
network (``<out>/teacher``, ``<out>/student``) and pictures (``--show-dir``)
are named ``<network>_<image>`` when the visualizer has a ``name_prefix``
(``S5SegLocalVisualizer``).
"""
import os.path as osp
from contextlib import contextmanager
from typing import List, Tuple

from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import TestLoop, ValLoop
from mmengine.runner.loops import _parse_losses
from mmengine.utils import mkdir_or_exist
from mmseg.registry import LOOPS


class _TeacherStudentEval:
    """Shared ``run()``; ``run_iter`` and the evaluator are the base loop's."""

    def _networks(self) -> Tuple[object, List[str]]:
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        if isinstance(model, BaseTTAModel):  # tools/test.py --tta
            model = model.module
        if not (hasattr(model, 'student')
                and isinstance(getattr(model, 'semi_test_cfg', None), dict)):
            raise TypeError(
                f'{type(self).__name__} needs a teacher-student model with a '
                f'student and a semi_test_cfg dict (e.g. S4PSegmentor), got '
                f'{type(model).__name__}')
        has_teacher = getattr(model, 'with_ema_teacher',
                              hasattr(model, 'teacher'))
        return model, (['teacher', 'student'] if has_teacher else
                       ['student'])

    def _run_each(self, stage: str) -> dict:
        runner = self.runner
        runner.call_hook(f'before_{stage}')
        runner.call_hook(f'before_{stage}_epoch')
        runner.model.eval()
        model, names = self._networks()
        predict_on = model.semi_test_cfg.get('predict_on')
        # The base loops' per-pass loss buffers (val_loss / test_loss).
        losses = getattr(self, f'{stage}_loss', {})
        metrics = {}
        try:
            for name in names:
                model.semi_test_cfg['predict_on'] = name
                losses.clear()
                with _network_outputs(self.evaluator, runner.visualizer,
                                      name):
                    for idx, data_batch in enumerate(self.dataloader):
                        self.run_iter(idx, data_batch)
                    scores = self.evaluator.evaluate(
                        len(self.dataloader.dataset))
                if losses:
                    scores.update(_parse_losses(losses, stage))
                metrics.update({f'{name}/{k}': v for k, v in scores.items()})
        finally:
            model.semi_test_cfg['predict_on'] = predict_on
        runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
        runner.call_hook(f'after_{stage}')
        return metrics


def _metrics_with_output(evaluator):
    """Metrics that write files (``MultiDatasetSegMetric`` moves its
    per-dataset ones itself)."""
    return [m for m in getattr(evaluator, 'metrics', [])
            if getattr(m, 'output_dir', None)]


@contextmanager
def _network_outputs(evaluator, visualizer, network: str):
    """One network's pass: its prediction files in ``<output_dir>/<network>``
    and its pictures named ``<network>_...`` (else the second pass would
    overwrite the first one's files)."""
    metrics = _metrics_with_output(evaluator)
    old_dirs = [m.output_dir for m in metrics]
    has_prefix = hasattr(visualizer, 'name_prefix')
    old_prefix = visualizer.name_prefix if has_prefix else None
    for m, d in zip(metrics, old_dirs):
        m.output_dir = osp.join(d, network)
        mkdir_or_exist(m.output_dir)
    if has_prefix:
        visualizer.name_prefix = f'{old_prefix}{network}_'
    try:
        yield
    finally:
        for m, d in zip(metrics, old_dirs):
            m.output_dir = d
        if has_prefix:
            visualizer.name_prefix = old_prefix


@LOOPS.register_module()
class S4PTeacherStudentValLoop(_TeacherStudentEval, ValLoop):
    """ValLoop scoring ``teacher/...`` (EMA teacher only) and ``student/...``.

    A checkpoint's ``save_best`` then names a prefixed key, e.g.
    ``'student/mIoU'``.
    """

    def run(self) -> dict:
        return self._run_each('val')


@LOOPS.register_module()
class S4PTeacherStudentTestLoop(_TeacherStudentEval, TestLoop):
    """TestLoop scoring ``teacher/...`` (EMA teacher only) and
    ``student/...``."""

    def run(self) -> dict:
        return self._run_each('test')
