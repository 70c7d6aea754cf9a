"""Paired bootstrap over tiles (issue 20, item 3)."""
import numpy as np
import pytest
import torch

from s5_mm.evaluation.bootstrap import (confusion_per_tile, mean_interval,
                                        mf1, miou, paired_bootstrap)


def _random_tiles(rng, n_tiles=12, k=4, size=16, err=0.3):
    labels, preds = [], []
    for _ in range(n_tiles):
        y = rng.integers(0, k, (size, size))
        y[rng.random((size, size)) < 0.1] = 255
        p = np.where(rng.random((size, size)) < err,
                     rng.integers(0, k, (size, size)), y)
        labels.append(y)
        preds.append(np.where(p == 255, 0, p))
    return preds, labels


def test_metrics_equal_mmseg_iou_metric():
    from mmseg.evaluation.metrics import IoUMetric
    rng = np.random.default_rng(0)
    preds, labels = _random_tiles(rng)
    conf = confusion_per_tile(preds, labels, 4).sum(0)
    inter, union, pred_area, label_area = (torch.zeros(4, dtype=torch.float64)
                                           for _ in range(4))
    for p, y in zip(preds, labels):
        r = IoUMetric.intersect_and_union(torch.from_numpy(p),
                                          torch.from_numpy(y), 4, 255)
        for acc, v in zip((inter, union, pred_area, label_area), r):
            acc += v
    ref = IoUMetric.total_area_to_metrics(inter, union, pred_area,
                                          label_area, ['mIoU', 'mFscore'])
    assert miou(conf) == pytest.approx(100 * np.nanmean(ref['IoU']), 1e-9)
    # MMSeg's F-score is 2PR/(P+R), the same as 2tp/(2tp+fp+fn)
    assert mf1(conf) == pytest.approx(100 * np.nanmean(ref['Fscore']), 1e-9)


def test_confusion_leaves_out_ignored_pixels_and_checks_shapes():
    y = np.array([[0, 1], [255, 2]])
    p = np.array([[0, 2], [1, 2]])
    conf = confusion_per_tile([p], [y], 3)[0]
    assert conf.sum() == 3 and conf[0, 0] == 1 and conf[1, 2] == 1 \
        and conf[2, 2] == 1
    with pytest.raises(ValueError, match='shape'):
        confusion_per_tile([p[:1]], [y], 3)
    with pytest.raises(ValueError, match='outside'):
        confusion_per_tile([p + 5], [y], 3)


def test_paired_interval_sees_a_consistent_gain():
    rng = np.random.default_rng(1)
    preds_b, labels = _random_tiles(rng, err=0.5)
    # A fixes a quarter of B's errors on every tile
    preds_a = [np.where((pb != y) & (y != 255) &
                        (rng.random(y.shape) < 0.25), y, pb)
               for pb, y in zip(preds_b, labels)]
    ca = confusion_per_tile(preds_a, labels, 4)
    cb = confusion_per_tile(preds_b, labels, 4)
    res = paired_bootstrap(ca, cb, miou, n_boot=500, seed=0)
    assert res['delta'] == pytest.approx(res['a'] - res['b'])
    assert res['delta'] > 2
    assert 0 < res['low'] < res['delta'] < res['high']
    same = paired_bootstrap(cb, cb, mf1, n_boot=200)
    assert same['low'] == same['high'] == same['delta'] == 0


def test_paired_bootstrap_refuses_other_pixels():
    rng = np.random.default_rng(2)
    preds, labels = _random_tiles(rng)
    ca = confusion_per_tile(preds, labels, 4)
    cb = ca.copy()
    cb[0, 0, 0] += 1
    with pytest.raises(ValueError, match='different pixels'):
        paired_bootstrap(ca, cb)


def test_mean_interval_of_three_seeds():
    r = mean_interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.3027; sd = 1
    assert r['mean'] == 2.0 and r['sd'] == pytest.approx(1.0)
    assert r['high'] - r['mean'] == pytest.approx(4.302653 / np.sqrt(3),
                                                  rel=1e-5)


def test_runs_on_the_same_tiles_give_the_mean_gain():
    rng = np.random.default_rng(3)
    preds_b, labels = _random_tiles(rng, err=0.5)
    runs_a = []
    for fix in (0.1, 0.3, 0.5):
        runs_a.append(confusion_per_tile(
            [np.where((pb != y) & (y != 255) & (rng.random(y.shape) < fix),
                      y, pb) for pb, y in zip(preds_b, labels)], labels, 4))
    cb = confusion_per_tile(preds_b, labels, 4)
    res = paired_bootstrap(np.stack(runs_a), np.stack([cb] * 3), mf1,
                           n_boot=400)
    singles = [paired_bootstrap(ca, cb, mf1)['delta'] for ca in runs_a]
    assert res['runs'] == 3
    assert res['delta'] == pytest.approx(np.mean(singles))
    assert singles[0] < res['delta'] < singles[2]
    assert res['low'] < res['delta'] < res['high']
