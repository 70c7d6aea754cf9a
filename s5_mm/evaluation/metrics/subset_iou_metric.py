"""IoU metric whose means skip some classes (iSAID: mIoU over foreground).

Skipped classes still count in the confusion: predicting a foreground class
on background lowers that class's IoU. Only the class means leave them out.
"""
from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np
from mmseg.evaluation import IoUMetric

from s5_mm.registry import METRICS


@METRICS.register_module()
class SubsetIoUMetric(IoUMetric):
    """``IoUMetric`` with the class means (mIoU, mDice, mFscore, ...) taken
    over all classes except ``exclude_classes`` (names). The all-class means
    are reported too, as ``<name>_all``."""

    def __init__(self, exclude_classes: Sequence[str] = ('background', ),
                 **kwargs):
        super().__init__(**kwargs)
        self.exclude_classes = tuple(exclude_classes)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        classes = list(self.dataset_meta['classes'])
        unknown = [c for c in self.exclude_classes if c not in classes]
        if unknown:
            raise KeyError(f'exclude_classes {unknown} are not dataset '
                           f'classes {classes}')
        keep = np.array([c not in self.exclude_classes for c in classes])
        areas = [sum(r) for r in zip(*results)]
        per_class = self.total_area_to_metrics(*areas, self.metrics,
                                               self.nan_to_num, self.beta)
        out = OrderedDict(metrics)
        for name, values in per_class.items():
            if name == 'aAcc':
                continue
            values = np.asarray(values.cpu() if hasattr(values, 'cpu')
                                else values, dtype=np.float64)
            out[f'm{name}_all'] = metrics[f'm{name}']
            out[f'm{name}'] = float(np.round(np.nanmean(values[keep]) * 100,
                                             2))
        return dict(out)
