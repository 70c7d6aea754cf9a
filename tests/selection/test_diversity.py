"""Quotas, ascending-entropy fill, cosine assignment, OOD floor."""
import numpy as np
import pytest

from s5_mm.selection.diversity import (assign_cosine, fill_quotas,
                                       fit_kmeans, largest_remainder_quotas,
                                       ood_floor_from_labelled,
                                       select_diverse)


def test_largest_remainder_known_answer():
    # B_u=10, N=[5,3,2] of B_l=10 -> exact [5,3,2]
    assert largest_remainder_quotas([5, 3, 2], 10).tolist() == [5, 3, 2]
    # 7 * [1,1,1]/3 = 2.33 each: floors 2,2,2, one left -> lowest index
    assert largest_remainder_quotas([1, 1, 1], 7).tolist() == [3, 2, 2]
    # B_u=4 over [6,3,1]: 2.4, 1.2, 0.4 -> floors 2,1,0; one left, the
    # remainders .4 .2 .4 tie between clusters 0 and 2 -> lower index
    assert largest_remainder_quotas([6, 3, 1], 4).tolist() == [3, 1, 0]
    assert largest_remainder_quotas([0, 5], 3).tolist() == [0, 3]


@pytest.mark.parametrize('seed', range(20))
def test_rounding_sums_to_budget(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 1000, size=rng.integers(1, 80))
    counts[0] += 1
    budget = int(rng.integers(0, 10 ** 7))
    q = largest_remainder_quotas(counts, budget)
    assert q.sum() == budget
    exact = budget * counts / counts.sum()
    assert (np.abs(q - exact) < 1).all()


def test_huge_budget_exact_integers():
    q = largest_remainder_quotas([3, 3, 1], 10 ** 15 + 1)
    assert int(q.sum()) == 10 ** 15 + 1


def test_fill_in_ascending_entropy_with_shortfall():
    cluster = np.array([0, 0, 0, 1, 1, 0, 2, 1])
    entropy = np.array([.5, .1, .3, .9, .2, .4, .7, np.nan])
    quotas = np.array([2, 2, 1])
    r = fill_quotas(cluster, entropy, quotas)
    # cluster 0: entropies .1(1) .3(2) chosen; cluster 1: .2(4) .9(3);
    # index 7 (NaN, unreadable) never a candidate; cluster 2: .7(6)
    assert r['selected'].tolist() == [1, 2, 3, 4, 6]
    assert r['filled'].tolist() == [2, 2, 1]
    assert r['shortfall'].tolist() == [0, 0, 0]
    r = fill_quotas(cluster, entropy, np.array([1, 3, 1]))
    assert r['candidates'].tolist() == [4, 2, 1]
    assert r['shortfall'].tolist() == [0, 1, 0]
    assert r['selected'].tolist() == [1, 3, 4, 6]


def test_fill_ties_follow_pool_order_and_eligibility():
    cluster = np.zeros(5, int)
    entropy = np.array([.2, .1, .1, .1, .0])
    r = fill_quotas(cluster, entropy, [3])
    assert r['selected'].tolist() == [1, 2, 4]
    r = fill_quotas(cluster, entropy, [3],
                    eligible=np.array([1, 1, 0, 1, 0], bool))
    assert r['selected'].tolist() == [0, 1, 3]


def test_redistribution_off_by_default_and_on():
    cluster = np.array([0, 1, 1, 1, 1, 2, 2, 2])
    entropy = np.array([.1, .5, .4, .3, .2, .9, .8, .7])
    quotas = np.array([3, 2, 1])  # cluster 0 has one candidate: short 2
    off = fill_quotas(cluster, entropy, quotas)
    assert off['selected'].size == 4 and off['shortfall'].sum() == 2
    on = fill_quotas(cluster, entropy, quotas, redistribute=True,
                     weights=np.array([3, 2, 1]))
    assert on['selected'].size == 6
    assert on['shortfall'].tolist() == [2, 0, 0]
    # the 2 left over go by weight 2:1 -> one each (largest remainder)
    assert on['received'].tolist() == [0, 1, 1]
    assert on['filled'].tolist() == [1, 3, 2]
    # the lowest-entropy spare images of each receiving cluster
    assert on['selected'].tolist() == [0, 2, 3, 4, 6, 7]


def test_cosine_assignment():
    cent = np.array([[1., 0., 0.], [0., 2., 0.], [0., 0., 5.]])
    x = np.array([[3., 1., 0.], [0.1, 0.2, 0.], [0., -1., 0.1],
                  [np.nan, 0, 0]], np.float16)
    cl, sim = assign_cosine(x, cent, block=2)
    assert cl.tolist() == [0, 1, 2, -1]
    assert sim[0] == pytest.approx(3 / 10 ** .5, abs=1e-3)
    assert sim[1] == pytest.approx(2 / 5 ** .5, abs=1e-3)
    assert sim[2] == pytest.approx(0.1 / 1.01 ** .5, abs=1e-3)
    assert np.isnan(sim[3])


def test_ood_floor_percentile():
    s = np.arange(101, dtype=float) / 100
    assert ood_floor_from_labelled(s, 1) == pytest.approx(0.01)
    assert ood_floor_from_labelled(np.r_[s, np.nan], 50) == \
        pytest.approx(0.5)


def _blobs(rng, n_per, centres, noise=0.05):
    x = np.concatenate([c + noise * rng.standard_normal((n, len(c)))
                        for c, n in zip(centres, n_per)])
    return x.astype(np.float32)


@pytest.mark.parametrize('backend', ['faiss', 'sklearn', 'minibatch'])
def test_kmeans_recovers_blobs_and_quotas(backend):
    rng = np.random.default_rng(0)
    centres = np.eye(4, 8)
    lab = _blobs(rng, [30, 10, 40, 20], centres)
    km = fit_kmeans(lab, 4, seed=0, backend=backend)
    sizes = sorted(np.bincount(km['labels']).tolist())
    assert sizes == [10, 20, 30, 40]
    pool = _blobs(rng, [50, 50, 50, 50], centres)
    ent = rng.random(200)
    r = select_diverse(lab, pool, ent, budget=50, clusters=4,
                       backend=backend)
    # quotas 50 * [30,10,40,20]/100 = 15, 5, 20, 10 per true blob
    truth = np.repeat(np.arange(4), 50)
    got = sorted(np.bincount(truth[r['selected']], minlength=4).tolist())
    assert got == [5, 10, 15, 20]
    for b, q in zip(range(4), (15, 5, 20, 10)):
        members = np.flatnonzero(truth == b)
        chosen = set(np.intersect1d(members, r['selected']).tolist())
        lowest = members[np.argsort(ent[members])][:q]
        assert chosen == set(lowest.tolist())


def test_ood_guard_drops_far_images():
    rng = np.random.default_rng(1)
    centres = np.eye(2, 6)
    lab = _blobs(rng, [20, 20], centres)
    pool = np.concatenate([_blobs(rng, [10, 10], centres),
                           np.tile(np.eye(6)[5], (5, 1)).astype(np.float32)])
    ent = np.r_[np.full(20, 0.5), np.zeros(5)]  # OOD looks confident
    r = select_diverse(lab, pool, ent, budget=10, clusters=2)
    assert (r['selected'] >= 20).sum() == 5  # entropy alone takes them
    g = select_diverse(lab, pool, ent, budget=10, clusters=2,
                       ood_floor=('percentile', 1))
    assert (g['selected'] >= 20).sum() == 0
    # the floor is the labelled 1st percentile: an in-domain pool image
    # may fall under it too, every OOD one does
    assert (g['similarity'][20:] < g['ood_floor']).all()
    assert g['below_floor'] >= 5 and 0.5 < g['ood_floor'] < 1


def test_too_few_labelled_for_clusters():
    with pytest.raises(ValueError, match='cannot form 5 clusters'):
        fit_kmeans(np.eye(3, 4), 5)


def test_held_out_similarity_leaves_each_image_out():
    from s5_mm.selection.diversity import held_out_similarity
    x = np.array([[1., 0.], [0.6, 0.8], [0., 1.], [1., 1.]])
    labels = np.array([0, 0, 1, 1])
    s = held_out_similarity(x, labels, 2)
    # image 0 without itself: cluster 0 = (0.6, 0.8) -> cos 0.6; cluster 1
    # = mean((0,1), (1,1)/sqrt2) -> cos 0.383: keeps 0.6
    c1 = (np.array([0., 1.]) + np.array([1., 1.]) / 2 ** .5) / 2
    assert s[0] == pytest.approx(max(0.6, c1[0] / np.linalg.norm(c1)),
                                 abs=1e-6)
    # image 2 without itself: cluster 1 = (1,1)/sqrt2 -> 0.707; cluster 0 =
    # mean((1,0), (.6,.8)) = (.8,.4) -> 0.447
    assert s[2] == pytest.approx(2 ** -.5, abs=1e-6)
    # a cluster of one: the nearest other centroid only
    s1 = held_out_similarity(x[:3], np.array([0, 0, 1]), 2)
    c0 = np.array([0.8, 0.4]) / np.linalg.norm([0.8, 0.4])
    assert s1[2] == pytest.approx(c0[1], abs=1e-6)
