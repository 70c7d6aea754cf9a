"""SubsetIoUMetric: means over foreground classes, confusion over all."""
import pytest
import torch

import s5_mm  # noqa: F401
from s5_mm.evaluation.metrics import SubsetIoUMetric


def sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.tensor(gt)[None]))


def test_foreground_miou_by_hand():
    metric = SubsetIoUMetric(exclude_classes=('background', ))
    metric.dataset_meta = dict(classes=('background', 'ship', 'plane'))
    # gt:   bg bg ship ship plane 255 ; pred: ship bg ship bg plane ship
    metric.process({}, [sample([[1, 0, 1, 0, 2, 1]],
                               [[0, 0, 1, 1, 2, 255]])])
    out = metric.compute_metrics(metric.results)
    # ship: I=1, U=|{0,2,3}|=3 -> 1/3; plane: 1/1; background: 1/3
    assert out['mIoU'] == pytest.approx(100 * (1 / 3 + 1) / 2, abs=0.01)
    assert out['mIoU_all'] == pytest.approx(100 * (1 / 3 + 1 / 3 + 1) / 3,
                                            abs=0.01)
    assert out['aAcc'] == pytest.approx(60.0)


def test_unknown_excluded_class_is_an_error():
    metric = SubsetIoUMetric(exclude_classes=('clutter', ))
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, [sample([[0, 1]], [[0, 1]])])
    with pytest.raises(KeyError, match='clutter'):
        metric.compute_metrics(metric.results)
