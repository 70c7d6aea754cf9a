"""Tie-free checks for the tests (no assertion may hang on a tie).

Logits of one model computed along two paths (another batch size, tiling,
process count) agree to float32 rounding only, so their argmax may differ
where the top two logits are that close: :func:`top2` finds those pixels,
and :func:`miou_range` gives the mIoU either choice there allows.
"""
import socket

import numpy as np

from s5_mm.evaluation.bootstrap import class_iou, confusion_per_tile


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a rendezvous)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def top2(scores, axis: int = 0):
    """``(best, second, gap)`` along ``axis`` of logits or probabilities:
    the argmax, the runner-up class and the score gap between them."""
    s = np.asarray(scores, dtype=np.float64)
    best = s.argmax(axis)
    b = np.expand_dims(best, axis)
    v1 = np.take_along_axis(s, b, axis)
    rest = s.copy()
    np.put_along_axis(rest, b, -np.inf, axis)
    second = rest.argmax(axis)
    v2 = np.take_along_axis(rest, np.expand_dims(second, axis), axis)
    return best, second, (v1 - v2).squeeze(axis)


def confusion(pred, label, num_classes: int, ignore_index: int = 255):
    """(num_classes, num_classes) counts, rows = label, columns = pred."""
    return confusion_per_tile([np.ravel(pred)], [np.ravel(label)],
                              num_classes, ignore_index)[0]


def miou_from_confusion(cm, classes=None) -> float:
    """Mean IoU (%) over ``classes`` (default all), classes absent from both
    labels and predictions left out (as MMSeg's IoUMetric)."""
    iou = class_iou(np.asarray(cm))
    if classes is not None:
        iou = iou[list(classes)]
    return float(np.nanmean(iou) * 100)


def miou(pred, label, num_classes: int, classes=None,
         ignore_index: int = 255) -> float:
    return miou_from_confusion(
        confusion(pred, label, num_classes, ignore_index), classes)


def miou_range(scores, label, num_classes: int, margin: float = 1e-4,
               axis: int = 0, classes=None, ignore_index: int = 255):
    """``(low, high, n)``: bounds of the mIoU (%) of the argmax of
    ``scores`` whatever class, of the top two, each of the ``n`` labelled
    pixels whose top-2 gap is at most ``margin`` takes (``low == high``
    when ``n == 0``). Each class's IoU is bounded on its own (intersection
    and prediction count moved as far as those pixels allow), so the bounds
    hold for any choice. ``scores`` has the classes on ``axis`` and
    otherwise the shape of ``label``."""
    best, second, gap = top2(scores, axis)
    label = np.asarray(label)
    und = (gap <= margin) & (label != ignore_index)
    cm = confusion(best, label, num_classes, ignore_index).astype(np.float64)
    lab, b, s = label[und], best[und], second[und]
    lo, hi = [], []
    for c in (range(num_classes) if classes is None else classes):
        inter, gt, pred = cm[c, c], cm[c].sum(), cm[:, c].sum()
        i_lo = inter - np.sum((b == c) & (lab == c))
        i_hi = inter + np.sum((s == c) & (lab == c))
        p_lo = pred - np.sum(b == c)
        p_hi = pred + np.sum(s == c)
        if gt == 0 and p_hi == 0:
            continue  # absent whatever the choice
        if gt == 0:  # IoU 0 when predicted, left out when not
            lo.append(0.)
            if p_lo > 0:
                hi.append(0.)
            continue
        lo.append(i_lo / (gt + p_hi - i_lo))
        hi.append(i_hi / (gt + p_lo - i_hi))
    return (float(np.mean(lo) * 100), float(np.mean(hi) * 100) if hi else 0.,
            int(und.sum()))


def val_capture_hook():
    """A hook keeping the last validation's per-sample predictions and
    labels (numpy) in its ``samples`` list: the metric the loop logs can be
    recomputed from the very predictions it scored (no second forward, no
    tie). Register it with ``runner.register_hook``."""
    from mmengine.hooks import Hook

    class _ValCapture(Hook):
        priority = 'LOWEST'

        def __init__(self):
            self.samples = []

        def before_val_epoch(self, runner):
            self.samples = []

        def after_val_iter(self, runner, batch_idx, data_batch=None,
                           outputs=None):
            for s in outputs:
                self.samples.append(
                    (s.pred_sem_seg.data[0].cpu().numpy(),
                     s.gt_sem_seg.data[0].cpu().numpy()))

    return _ValCapture()
