"""Diversity expansion: K-Means on labelled features, cosine assignment,
per-cluster quotas and ascending-entropy fill (spec section 1).

Quotas. Cluster m's share is ``B_u * N_m / B_l``. Shares are rounded by the
largest-remainder (Hamilton) method in exact integer arithmetic: every
cluster gets ``floor(B_u * N_m / B_l)``, and the ``B_u - sum(floors)``
images left over go one each to the clusters with the largest remainders
``(B_u * N_m) mod B_l`` (ties: lower cluster index). The quotas therefore
sum to exactly ``B_u`` and no cluster is off its share by one or more.

Fill. Candidates (scored, with a valid pixel, and above the optional OOD
floor) are taken per cluster in ascending entropy (ties: pool order) until
the quota is full. A cluster with fewer candidates than its quota reports
the shortfall. With ``redistribute=True`` the total shortfall is handed out
again, by the same largest-remainder rule weighted by ``N_m``, to the
clusters that still have candidates, capped by what they have, until it is
used up or no candidate is left.

OOD guard. ``ood_floor`` drops candidates whose cosine similarity to their
nearest centroid is below it. :func:`ood_floor_from_labelled` picks it as a
low percentile of the labelled images' held-out similarity
(:func:`held_out_similarity`: each labelled image against the centroids
recomputed without it), so only about that share of unseen in-domain images
would fall below it. Held out, because a labelled image is part of its own
centroid: with small clusters its plain similarity is close to 1 and the
floor would drop most in-domain images (measured: benchmarks/RESULTS.md).
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

KMEANS_BACKENDS = ('sklearn', 'minibatch', 'faiss')


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def fit_kmeans(features: np.ndarray, k: int, seed: int = 0,
               backend: str = 'faiss', n_init: int = 1,
               max_iter: int = 100) -> Dict[str, np.ndarray]:
    """K-Means on (L2-normalised) labelled features (Lloyd iterations).

    Backends: 'faiss' (faiss-cpu ``Kmeans``, the default: 12.6 s for 40k x
    768 into 64 clusters on the 2-core dev box against 122 s for
    scikit-learn's ``KMeans`` and 173 s for ``MiniBatchKMeans``, see
    benchmarks/RESULTS.md), 'sklearn' (``KMeans``, k-means++ init) or
    'minibatch' (``MiniBatchKMeans``).

    Returns ``centroids`` (k, D) float32 and ``labels`` (n,) int64 (the
    labelled images' clusters, whose sizes are the ``N_m``).
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError('labelled features hold NaN/inf (images without '
                         'valid pixels must be dropped first)')
    if len(x) < k:
        raise ValueError(f'{len(x)} labelled images cannot form {k} '
                         'clusters; lower --clusters')
    if backend == 'sklearn':
        from sklearn.cluster import KMeans
        km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter,
                    random_state=seed).fit(x)
        return dict(centroids=km.cluster_centers_.astype(np.float32),
                    labels=km.labels_.astype(np.int64))
    if backend == 'minibatch':
        from sklearn.cluster import MiniBatchKMeans
        km = MiniBatchKMeans(n_clusters=k, n_init=max(n_init, 3),
                             max_iter=max_iter, batch_size=4096,
                             random_state=seed).fit(x)
        return dict(centroids=km.cluster_centers_.astype(np.float32),
                    labels=km.predict(x).astype(np.int64))
    if backend == 'faiss':
        try:
            import faiss
        except ImportError as e:
            raise ImportError("kmeans backend 'faiss' needs the faiss-cpu "
                              'package') from e
        km = faiss.Kmeans(x.shape[1], k, niter=max_iter, nredo=n_init,
                          seed=seed, max_points_per_centroid=10**9)
        km.train(x)
        _, lab = km.index.search(x, 1)
        return dict(centroids=km.centroids.astype(np.float32),
                    labels=lab[:, 0].astype(np.int64))
    raise ValueError(f'kmeans backend must be one of {KMEANS_BACKENDS}, got '
                     f'{backend!r}')


def assign_cosine(features, centroids: np.ndarray, block: int = 65536):
    """Nearest centroid by cosine similarity, in blocks (``features`` may be
    a float16 memmap of any length). Rows with NaN get cluster -1 and
    similarity NaN. Returns ``(cluster int32, similarity float32)``."""
    c = l2_normalise(centroids)
    n = len(features)
    cluster = np.empty(n, dtype=np.int32)
    sim = np.empty(n, dtype=np.float32)
    for s in range(0, n, block):
        x = l2_normalise(features[s:s + block])
        bad = ~np.isfinite(x).all(axis=1)
        x[bad] = 0
        sims = x @ c.T
        cl = sims.argmax(axis=1)
        cluster[s:s + block] = cl
        sim[s:s + block] = sims[np.arange(len(cl)), cl]
        cluster[s:s + block][bad] = -1
        sim[s:s + block][bad] = np.nan
    return cluster, sim


def largest_remainder_quotas(counts, budget: int) -> np.ndarray:
    """Integer quotas proportional to ``counts`` summing to ``budget``
    (largest-remainder rounding, exact integers; see the module docstring)."""
    counts = np.asarray(counts, dtype=np.int64)
    if (counts < 0).any():
        raise ValueError('cluster counts must be >= 0')
    total = int(counts.sum())
    budget = int(budget)
    if budget < 0:
        raise ValueError(f'budget must be >= 0, got {budget}')
    if total == 0:
        if budget:
            raise ValueError('no cluster has a labelled image to share the '
                             'budget by')
        return np.zeros_like(counts)
    # Python ints: B_u * N_m can exceed int64 for huge pools
    prod = [budget * int(c) for c in counts]
    quota = np.array([p // total for p in prod], dtype=np.int64)
    rem = np.array([p % total for p in prod], dtype=object)
    left = budget - int(quota.sum())
    order = sorted(range(len(counts)), key=lambda m: (-rem[m], m))
    for m in order[:left]:
        quota[m] += 1
    return quota


def held_out_similarity(features: np.ndarray, labels: np.ndarray,
                        k: int) -> np.ndarray:
    """Cosine similarity of each labelled image to the nearest centroid when
    it is left out of its own cluster's mean (clusters of one: the nearest
    other centroid). Centroids are the member means of ``labels``."""
    x = l2_normalise(features).astype(np.float64)
    labels = np.asarray(labels)
    n = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x)
    cent = sums / np.maximum(n, 1)[:, None]
    cn = np.linalg.norm(cent, axis=1)
    sims = (x @ cent.T) / np.maximum(cn, 1e-12)[None]  # rows unit-norm
    sims[:, n == 0] = -np.inf
    own = labels
    loo = (sums[own] - x) / np.maximum(n[own] - 1, 1)[:, None]
    ln = np.linalg.norm(loo, axis=1)
    own_sim = np.where(n[own] > 1, (x * loo).sum(1) / np.maximum(ln, 1e-12),
                       -np.inf)
    sims[np.arange(len(x)), own] = own_sim
    return sims.max(axis=1).astype(np.float32)


def ood_floor_from_labelled(labelled_sim: np.ndarray,
                            percentile: float = 1.0) -> float:
    """The ``percentile``-th percentile of the labelled images' (held-out)
    similarity to the nearest centroid (see the module docstring)."""
    s = np.asarray(labelled_sim, dtype=np.float64)
    s = s[np.isfinite(s)]
    if not len(s):
        raise ValueError('no labelled similarity to choose a floor from')
    if not 0 <= percentile <= 100:
        raise ValueError(f'percentile must be in [0, 100], got {percentile}')
    return float(np.percentile(s, percentile))


def fill_quotas(cluster: np.ndarray, entropy: np.ndarray, quotas,
                eligible: Optional[np.ndarray] = None,
                redistribute: bool = False,
                weights=None) -> Dict[str, np.ndarray]:
    """Ascending-entropy fill of per-cluster quotas.

    Args:
        cluster: (n,) cluster of each pool image (-1: none).
        entropy: (n,) entropy (NaN: not a candidate).
        quotas: (M,) integer quotas.
        eligible: (n,) bool, e.g. above the OOD floor.
        redistribute: hand the shortfall to clusters with spare candidates.
        weights: (M,) redistribution weights (the ``N_m``; default quotas).

    Returns dict: ``selected`` (indices, sorted), ``filled`` (M,),
    ``candidates`` (M,), ``quota`` (M,), ``shortfall`` (M,) the images
    a cluster lacked for its quota, ``received`` (M,) the images it took
    beyond its quota by redistribution.
    """
    cluster = np.asarray(cluster)
    entropy = np.asarray(entropy, dtype=np.float64)
    quotas = np.asarray(quotas, dtype=np.int64).copy()
    m_count = len(quotas)
    ok = np.isfinite(entropy) & (cluster >= 0)
    if eligible is not None:
        ok &= np.asarray(eligible, dtype=bool)
    idx = np.flatnonzero(ok)
    # cluster, then ascending entropy, then pool order (stable)
    order = idx[np.lexsort((idx, entropy[idx], cluster[idx]))]
    cl_sorted = cluster[order]
    starts = np.searchsorted(cl_sorted, np.arange(m_count), 'left')
    ends = np.searchsorted(cl_sorted, np.arange(m_count), 'right')
    candidates = (ends - starts).astype(np.int64)
    filled = np.minimum(quotas, candidates)
    if redistribute:
        w = np.asarray(weights if weights is not None else quotas,
                       dtype=np.int64)
        short = int(np.maximum(quotas - filled, 0).sum())
        while short > 0:
            spare = candidates - filled
            open_ = spare > 0
            if not open_.any():
                break
            # clusters with spare but zero weight share equally
            wo = np.where(open_, w, 0) if w[open_].sum() > 0 else \
                open_.astype(np.int64)
            extra = np.minimum(largest_remainder_quotas(wo, short), spare)
            filled += extra  # >= 1 image per round: the loop ends
            short -= int(extra.sum())
    parts = [order[starts[m]:starts[m] + filled[m]] for m in range(m_count)]
    selected = np.sort(np.concatenate(parts)) if parts else \
        np.zeros(0, dtype=np.int64)
    return dict(selected=selected, filled=filled, candidates=candidates,
                quota=quotas, shortfall=np.maximum(quotas - filled, 0),
                received=np.maximum(filled - quotas, 0))


def select_diverse(labelled_features: np.ndarray, pool_features,
                   pool_entropy: np.ndarray, budget: int, clusters: int = 64,
                   seed: int = 0, backend: str = 'faiss',
                   ood_floor=None, redistribute: bool = False,
                   block: int = 65536) -> dict:
    """The whole diversity step. ``ood_floor``: None, a number, or
    ``('percentile', P)`` (see :func:`ood_floor_from_labelled`).

    Returns dict with ``selected`` indices, per-cluster arrays (``count``
    N_m, ``quota``, ``candidates``, ``filled``, ``shortfall``), the pool's
    ``cluster`` and ``similarity``, ``centroids``, the floor used and the
    time of each part (seconds).
    """
    t0 = time.perf_counter()
    lab = l2_normalise(labelled_features)
    keep = np.isfinite(lab).all(axis=1)
    km = fit_kmeans(lab[keep], clusters, seed=seed, backend=backend)
    t1 = time.perf_counter()
    n_m = np.bincount(km['labels'], minlength=clusters)
    cluster, sim = assign_cosine(pool_features, km['centroids'], block)
    t2 = time.perf_counter()
    floor = None
    if isinstance(ood_floor, (tuple, list)):
        lab_sim = held_out_similarity(lab[keep], km['labels'], clusters)
        floor = ood_floor_from_labelled(lab_sim, float(ood_floor[1]))
    elif ood_floor is not None:
        floor = float(ood_floor)
    eligible = None if floor is None else (sim >= floor)
    quota = largest_remainder_quotas(n_m, budget)
    fill = fill_quotas(cluster, pool_entropy, quota, eligible=eligible,
                       redistribute=redistribute, weights=n_m)
    t3 = time.perf_counter()
    return dict(selected=fill['selected'], count=n_m,
                quota=fill['quota'], candidates=fill['candidates'],
                filled=fill['filled'], shortfall=fill['shortfall'],
                received=fill['received'], cluster=cluster,
                similarity=sim, centroids=km['centroids'], ood_floor=floor,
                below_floor=int((~eligible & np.isfinite(sim)).sum())
                if eligible is not None else 0,
                seconds=dict(kmeans=t1 - t0, assign=t2 - t1,
                             fill=t3 - t2))
