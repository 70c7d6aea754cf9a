"""Paired bootstrap intervals over test tiles for segmentation metrics.

Two models are compared on the same tiles and pixels: each tile gives a
confusion matrix per model; a bootstrap replicate draws tiles with
replacement and recomputes both metrics from the summed matrices of the
same draw, so the interval is for the difference on one test set.
"""
from typing import Callable, Dict, Optional, Sequence

import numpy as np

Metric = Callable[[np.ndarray], np.ndarray]


def confusion_per_tile(preds: Sequence[np.ndarray],
                       labels: Sequence[np.ndarray], num_classes: int,
                       ignore_index: int = 255) -> np.ndarray:
    """(T, K, K) int64 counts, ``[t, label, pred]``, over the pixels whose
    label is a class (``ignore_index`` and anything outside 0..K-1 left
    out)."""
    if len(preds) != len(labels):
        raise ValueError(f'{len(preds)} prediction maps for {len(labels)} '
                         'label maps')
    out = np.zeros((len(preds), num_classes, num_classes), np.int64)
    for t, (p, y) in enumerate(zip(preds, labels)):
        p, y = np.asarray(p), np.asarray(y)
        if p.shape != y.shape:
            raise ValueError(f'tile {t}: prediction {p.shape} and label '
                             f'{y.shape} differ in shape')
        keep = (y != ignore_index) & (y >= 0) & (y < num_classes)
        if ((p[keep] < 0) | (p[keep] >= num_classes)).any():
            raise ValueError(f'tile {t}: predicted ids outside '
                             f'0..{num_classes - 1}')
        idx = y[keep].astype(np.int64) * num_classes + p[keep]
        out[t] = np.bincount(idx, minlength=num_classes**2).reshape(
            num_classes, num_classes)
    return out


def _tp_fp_fn(conf: np.ndarray):
    tp = np.diagonal(conf, axis1=-2, axis2=-1).astype(np.float64)
    return tp, conf.sum(-2) - tp, conf.sum(-1) - tp


def class_iou(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU (0..1) of (..., K, K) matrices; NaN for a class absent
    from labels and predictions (MMSeg's rule)."""
    tp, fp, fn = _tp_fp_fn(conf)
    union = tp + fp + fn
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, tp / union, np.nan)


def miou(conf: np.ndarray) -> np.ndarray:
    """Mean IoU in % of (..., K, K) matrices; a class absent from labels
    and predictions is left out of the mean (MMSeg's NaN rule)."""
    return 100 * np.nanmean(class_iou(conf), axis=-1)


def mf1(conf: np.ndarray) -> np.ndarray:
    """Mean F1 in %, ``2 tp / (2 tp + fp + fn)`` per class, same NaN rule
    (``S5IoUMetric``'s F-score with beta 1)."""
    tp, fp, fn = _tp_fp_fn(conf)
    den = 2 * tp + fp + fn
    with np.errstate(invalid='ignore', divide='ignore'):
        f1 = np.where(den > 0, 2 * tp / den, np.nan)
    return 100 * np.nanmean(f1, axis=-1)


METRICS: Dict[str, Metric] = dict(mIoU=miou, mF1=mf1)


def paired_bootstrap(conf_a: np.ndarray, conf_b: np.ndarray,
                     metric: Metric = miou, n_boot: int = 2000,
                     seed: int = 0, level: float = 0.95) -> dict:
    """Metric of A, of B, A - B and its percentile interval over
    ``n_boot`` tile resamples (the same tiles for A and B).

    ``conf_a`` / ``conf_b``: (T, K, K) per-tile matrices, or (S, T, K, K)
    for S runs (seeds) on the same T tiles: then a, b and delta are means
    over the runs, and each replicate draws one set of tiles for all runs,
    so the interval is for the mean gain over seeds on this test set.
    """
    conf_a, conf_b = np.asarray(conf_a), np.asarray(conf_b)
    if conf_a.shape != conf_b.shape or conf_a.ndim not in (3, 4):
        raise ValueError(f'paired bootstrap needs two (T, K, K) or '
                         f'(S, T, K, K) arrays of one shape, got '
                         f'{conf_a.shape} and {conf_b.shape}')
    if conf_a.ndim == 3:
        conf_a, conf_b = conf_a[None], conf_b[None]
    if not np.array_equal(conf_a.sum(axis=(2, 3)), conf_b.sum(axis=(2, 3))):
        raise ValueError('the two models were scored on different pixels '
                         '(per-tile pixel counts differ)')
    n_runs, n_tiles, k = conf_a.shape[:3]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_tiles, np.full(n_tiles, 1 / n_tiles),
                            size=n_boot).astype(np.float64)

    def resampled(conf):  # (n_boot, S, K, K)
        flat = conf.reshape(n_runs, n_tiles, -1).astype(np.float64)
        return np.einsum('bt,stk->bsk', draws, flat).reshape(
            n_boot, n_runs, k, k)

    delta = (metric(resampled(conf_a)) - metric(resampled(conf_b))).mean(1)
    a = float(metric(conf_a.sum(1)).mean())
    b = float(metric(conf_b.sum(1)).mean())
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(delta, [tail, 100 - tail])
    return dict(a=a, b=b, delta=a - b, low=float(low), high=float(high),
                level=level, tiles=int(n_tiles), runs=int(n_runs),
                n_boot=int(n_boot))


def mean_interval(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean, sample standard deviation and a t interval of the mean of a
    few runs (e.g. seeds)."""
    from scipy import stats
    v = np.asarray(values, np.float64)
    n = len(v)
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else float('nan')
    if n > 1:
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n))
    else:
        half = float('nan')
    return dict(mean=mean, sd=sd, low=mean - half, high=mean + half, n=n)


def confusions_by_path(records: Sequence[dict], num_classes: int,
                       lut: Optional[np.ndarray] = None,
                       labels: Optional[Dict[str, np.ndarray]] = None):
    """``(paths, (T, K, K))`` from :func:`s5_mm.apis.predict_dataset`
    records, sorted by image path so that two models line up tile by tile.
    ``lut`` maps predicted ids first (e.g. 7 classes -> 3 merged ones);
    ``labels`` (path -> map) replaces the records' own labels."""
    recs = sorted(records, key=lambda r: str(r['img_path']))
    paths = [str(r['img_path']) for r in recs]
    if len(set(paths)) != len(paths):
        raise ValueError('the same image path appears twice in the records')
    preds = [lut[r['pred']] if lut is not None else r['pred'] for r in recs]
    ys = [labels[p] if labels is not None else r['label']
          for p, r in zip(paths, recs)]
    return paths, confusion_per_tile(preds, ys, num_classes)
