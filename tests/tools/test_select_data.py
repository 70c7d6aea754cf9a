"""tools/select_data.py on real land-cover tiles with a briefly trained
demo model: an independent reference computation, pseudo-labels, the list
the S4P dataset reads, bad images, early errors, kill-and-resume with a real
signal, and a 2-process gloo run."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from s5_mm.testing import landcover_model as lm
from s5_mm.testing import load_tool
from s5_mm.testing.checks import free_port

REPO = Path(__file__).resolve().parents[2]

BAND_MEAN = [82.59, 68.58, 68.98, 67.99, 88.85, 60.28]
BAND_STD = [15.76, 17.56, 25.05, 13.81, 25.32, 23.34]


@pytest.fixture(scope='module')
def model(tmp_path_factory, shared_data):
    return lm.trained_model(tmp_path_factory, shared_data)


@pytest.fixture(scope='module')
def tool():
    return load_tool('select_data.py')


def _args(cfg, ckpt, pool, labeled, out, *extra, budget=44, clusters=4):
    return [str(cfg), str(ckpt), '--pool', str(pool), '--labeled',
            str(labeled), '--budget', str(budget), '--out', str(out),
            '--clusters', str(clusters), '--all-classes', '--num-workers',
            '0', '--batch-size', '8', '--chunk-size', '16', '--no-progress',
            *extra]


def _lists(root):
    """Pool/labelled lists as the demo writes them, rooted at the tiles."""
    img = root / 'img_dir/train'
    return (root / 'splits/tiles/unlabelled.txt', img,
            root / 'splits/tiles/labelled.txt')


@pytest.fixture(scope='module')
def run(model, tool, tmp_path_factory):
    root, cfg, ckpt = model
    pool, img, lab = _lists(root)
    # the labelled list holds base names (MMSeg): --list-suffix adds .tif
    out = tmp_path_factory.mktemp('sel') / 'out'
    # the reference clusters with scikit-learn: the tool does too here
    rc = tool.main(_args(cfg, ckpt, pool, lab, out, '--pool-root',
                         str(img), '--labeled-root', str(img),
                         '--list-suffix', '.tif', '--save-pseudo-labels',
                         '--kmeans', 'sklearn'))
    assert rc == 0
    return dict(root=root, cfg=cfg, ckpt=ckpt, pool=pool, img=img,
                labeled=lab, out=out)


def _reference(cfg, ckpt, paths):
    """Entropy and pooled feature without the tool's loader or scorer:
    rasterio reads, hand normalisation, the model's encode_decode."""
    import rasterio
    import torch
    import torch.nn.functional as F
    from mmseg.apis import init_model

    import s5_mm  # noqa: F401
    model = init_model(str(cfg), str(ckpt), device='cpu')
    mean = np.array(BAND_MEAN, np.float32)[:, None, None]
    std = np.array(BAND_STD, np.float32)[:, None, None]
    ents, feats, labels = [], [], []
    for p in paths:
        with rasterio.open(p) as s:
            m = s.read(masked=True)
        # nodata -> 0 per band (as the geo loader); a pixel is valid when
        # no band is nodata
        valid = ~np.ma.getmaskarray(m).any(axis=0)
        x = (m.filled(0).astype(np.float32) - mean) / std
        t = torch.from_numpy(x)[None]
        h, w = x.shape[1:]
        meta = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))]
        with torch.no_grad():
            prob = model.encode_decode(t, meta)[0].softmax(0).double()
            feat = model.backbone(t)[-1][0].double()
        prob = prob.numpy()
        plogp = np.where(prob > 0, prob * np.log(np.where(prob > 0, prob,
                                                           1)), 0)
        e = -plogp.sum(0)
        ents.append(e[valid].mean())
        c, fh, fw = feat.shape
        wts = valid.reshape(fh, h // fh, fw, w // fw).mean(axis=(1, 3))
        f = (feat.numpy() * wts).sum(axis=(1, 2)) / wts.sum()
        feats.append((f / np.linalg.norm(f)).astype(np.float16))
        lab = prob.argmax(0).astype(np.uint8)
        lab[~valid] = 255
        labels.append(lab)
    del F
    return np.array(ents), np.array(feats), labels


def _ref_select(lab_f, pool_f, ent, budget, k):
    from sklearn.cluster import KMeans
    lab = lab_f[np.isfinite(lab_f.astype(np.float32)).all(1)]  # no empties
    lab = lab.astype(np.float32)
    lab /= np.linalg.norm(lab, axis=1, keepdims=True)
    km = KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=0)
    km.fit(lab)
    n_m = np.bincount(km.labels_, minlength=k)
    c = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1,
                                             keepdims=True)
    x = pool_f.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cos = np.sort(x @ c.T, axis=1)
    margin = cos[:, -1] - cos[:, -2]  # nearest vs second-nearest centroid
    cluster = (x @ c.T).argmax(1)
    exact = [Fraction(budget * int(n), int(n_m.sum())) for n in n_m]
    quota = [int(q) for q in exact]  # floors
    order = sorted(range(k), key=lambda m: (-(exact[m] - quota[m]), m))
    for m in order[:budget - sum(quota)]:
        quota[m] += 1
    chosen = []
    for m in range(k):
        idx = sorted(np.flatnonzero((cluster == m) & np.isfinite(ent)),
                     key=lambda i: (ent[i], i))
        chosen += idx[:quota[m]]
    return sorted(chosen), cluster, quota, margin


def _selected(out):
    rows = [ln.split() for ln in (out / 'selected.txt').read_text()
            .splitlines() if not ln.startswith('#')]
    return [(r[0], float(r[1]), int(r[2])) for r in rows]


def test_matches_independent_reference(run):
    names = run['pool'].read_text().split()
    lab_names = [f'{n}.tif' for n in run['labeled'].read_text().split()]
    ent, feat, labels = _reference(
        run['cfg'], run['ckpt'], [run['img'] / n for n in names])
    _, lab_feat, _ = _reference(run['cfg'], run['ckpt'],
                                [run['img'] / n for n in lab_names])
    rows = [ln.split('\t') for ln in (run['out'] / 'pool/scores.tsv')
            .read_text().splitlines()[1:]]
    assert [r[1] for r in rows] == names
    tool_ent = np.array([float(r[3]) for r in rows])
    np.testing.assert_allclose(tool_ent, ent, rtol=1e-5, atol=1e-6)
    # the nodata border matters: some tiles are partly invalid, some have
    # no valid pixel at all (band 6 nodata): those are not candidates
    vf = np.array([float(r[4]) for r in rows])
    assert ((vf > 0) & (vf < 1)).sum() >= 5
    empty = vf == 0
    assert [r[2] for r in rows if float(r[4]) == 0] == \
        ['no valid pixels'] * int(empty.sum())
    assert np.isnan(ent[empty]).all() and np.isfinite(ent[~empty]).all()
    tool_feat = np.load(run['out'] / 'pool/features.npy')
    np.testing.assert_allclose(tool_feat.astype(np.float32),
                               feat.astype(np.float32), atol=2e-3)
    tool_lab = np.load(run['out'] / 'labeled/features.npy')
    np.testing.assert_allclose(tool_lab.astype(np.float32),
                               lab_feat.astype(np.float32), atol=2e-3)
    # The selection from the features and entropies the tool stored: ours
    # agree with them to float16 / 1e-5 only, which could move an image
    # across a cluster boundary or a quota cut. Rebuilt from the tool's own
    # inputs, only the cosines run another way: the assignments must be
    # clear of that rounding for the lists to be compared exactly.
    sel_npz = np.load(run['out'] / 'selection.npz')
    chosen, cluster, quota, margin = _ref_select(
        tool_lab, tool_feat, sel_npz['entropy'], 44, 4)
    assert (margin[~empty] > 1e-4).all(), np.sort(margin[~empty])[:3]
    np.testing.assert_array_equal(sel_npz['cluster'][~empty],
                                  cluster[~empty])
    sel = _selected(run['out'])
    assert [s[0] for s in sel] == [names[i] for i in chosen]
    assert [s[2] for s in sel] == [int(cluster[i]) for i in chosen]
    summary = json.loads((run['out'] / 'summary.json').read_text())
    assert [c['quota'] for c in summary['clusters']] == quota
    # a cluster with fewer candidates than its quota reports the shortfall
    assert sum(quota) == 44 and summary['selected'] == len(chosen)
    assert summary['shortfall'] == 44 - len(chosen) == sum(
        c['shortfall'] for c in summary['clusters'])
    assert (run['out'] / 'summary.png').stat().st_size > 1000
    # pseudo-labels: georeferenced like the tile, argmax, 255 on nodata
    import rasterio
    part = int(np.flatnonzero((vf > 0) & (vf < 1))[0])
    for i in (int(np.argmax(vf)), part):
        src = run['img'] / names[i]
        dst = run['out'] / 'pseudo_labels' / names[i]
        with rasterio.open(src) as a, rasterio.open(dst) as b:
            assert b.transform == a.transform and b.crs == a.crs
            got = b.read(1)
        agree = (got == labels[i]).mean()
        assert agree > 0.99 and ((got == 255) == (labels[i] == 255)).all()


def test_selected_list_read_directly_by_unlabelled_dataset(run):
    from s5_mm.datasets.unlabeled import UnlabeledImageDataset
    ds = UnlabeledImageDataset(
        ann_file=str(run['out'] / 'selected.txt'),
        data_root=str(run['root']), data_prefix=dict(img_path='img_dir/train'),
        pipeline=[dict(type='LoadGeoImageFromFile', expected_bands=6)])
    sel = _selected(run['out'])
    summary = json.loads((run['out'] / 'summary.json').read_text())
    assert len(ds) == len(sel) == summary['selected'] > 30
    info = ds.get_data_info(3)
    assert info['img_path'] == str(run['img'] / sel[3][0])
    assert info['scores'] == [sel[3][1], sel[3][2]]
    assert ds[0]['img'].shape == (32, 32, 6)


def _gtiff(path, bands, value, nodata=-99999.0):
    import rasterio
    from rasterio.transform import from_origin
    with rasterio.open(path, 'w', driver='GTiff', width=32, height=32,
                       count=bands, dtype='float32', nodata=nodata,
                       transform=from_origin(0, 0, 1, 1)) as d:
        d.write(np.full((bands, 32, 32), value, np.float32))


def test_ood_floor_through_the_tool(run, tool, tmp_path):
    """--ood-floor on a copy of the finished run (scoring resumes, the
    selection reruns): no pool image below the floor is selected, the
    similarities are the cosine to the nearest centroid recomputed here from
    the stored features, and the held-out percentile rule is reported."""
    out = tmp_path / 'out'
    shutil.copytree(run['out'], out)
    base = np.load(run['out'] / 'selection.npz')
    # A floor at no image's similarity (the median of the selected ones is
    # one image's: below or not would hang on float rounding): the middle
    # of the widest gap between neighbouring pool similarities within the
    # middle half of the selected ones.
    lo, hi = np.quantile(base['similarity'][base['selected']], [0.25, 0.75])
    sims = np.unique(base['similarity'][np.isfinite(base['similarity'])])
    gap, a, b = max((b - a, a, b) for a, b in zip(sims[:-1], sims[1:])
                    if lo <= a and b <= hi)
    assert gap > 1e-4
    floor_arg = f'{(a + b) / 2:.6f}'
    floor = float(floor_arg)  # the very number the tool parses
    assert a + gap / 4 < floor < b - gap / 4
    args = _args(run['cfg'], run['ckpt'], run['pool'], run['labeled'], out,
                 '--pool-root', str(run['img']), '--labeled-root',
                 str(run['img']), '--list-suffix', '.tif', '--kmeans',
                 'sklearn', '--save-pseudo-labels')  # the run's settings
    assert tool.main(args + ['--ood-floor', floor_arg]) == 0
    sel = np.load(out / 'selection.npz')
    feats = np.load(out / 'pool' / 'features.npy').astype(np.float32)
    ok = np.isfinite(feats).all(1)
    c = sel['centroids'] / np.linalg.norm(sel['centroids'], axis=1,
                                          keepdims=True)
    sim = (feats[ok] / np.linalg.norm(feats[ok], axis=1, keepdims=True)) @ c.T
    np.testing.assert_allclose(sel['similarity'][ok], sim.max(1), atol=1e-3)
    assert sel['selected'].sum() > 0
    assert (sel['similarity'][sel['selected']] > floor).all()
    # about half of the first selection lay below the floor: now rejected
    assert sel['selected'].sum() < base['selected'].sum()
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['ood_floor'] == floor
    assert summary['below_ood_floor'] == int(
        (ok & np.isfinite(sel['entropy']) & (sel['similarity'] < floor))
        .sum())
    # the percentile rule: a floor taken from the labelled images
    out2 = tmp_path / 'out2'
    shutil.copytree(run['out'], out2)
    assert tool.main(args[:args.index('--out') + 1] + [str(out2)] +
                     args[args.index('--out') + 2:] +
                     ['--ood-floor', 'p10']) == 0
    s2 = json.loads((out2 / 'summary.json').read_text())
    assert s2['ood_floor'] == pytest.approx(
        _held_out_p10(out2 / 'labeled/features.npy'), abs=1e-6)


def _held_out_p10(path, k=4):
    """10th percentile of each labelled image's cosine to the nearest
    centroid, its own cluster's mean taken without it (clusters of the same
    scikit-learn K-Means as the tool's), computed image by image."""
    from sklearn.cluster import KMeans
    x = np.load(path).astype(np.float32)
    x = x[np.isfinite(x).all(1)]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = KMeans(n_clusters=k, n_init=1, max_iter=100,
                    random_state=0).fit(x).labels_
    x = x.astype(np.float64)
    held = []
    for i in range(len(x)):
        best = -np.inf
        for m in range(k):
            members = [j for j in range(len(x)) if labels[j] == m and j != i]
            if members:
                c = x[members].mean(0)
                best = max(best, float(x[i] @ c) / np.linalg.norm(c))
        held.append(best)
    return float(np.percentile(held, 10))


def test_bad_images_listed_and_skipped(run, tool, tmp_path):
    rows = [ln.split('\t') for ln in (run['out'] / 'pool/scores.tsv')
            .read_text().splitlines()[1:]]
    names = [r[1] for r in rows if r[2] == 'ok'][:20]  # with valid pixels
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'zero.tif').write_bytes(b'')
    (bad / 'corrupt.tif').write_bytes(os.urandom(3000))
    _gtiff(bad / 'five_bands.tif', 5, 70.0)
    _gtiff(bad / 'all_nodata.tif', 6, -99999.0)
    extra = [str(bad / f) for f in ('zero.tif', 'corrupt.tif',
                                    'five_bands.tif', 'all_nodata.tif')]
    extra.append(str(bad / 'missing.tif'))
    pool = tmp_path / 'pool.txt'
    pool.write_text('\n'.join(names[:7] + extra + names[7:]) + '\n')
    out = tmp_path / 'out'
    assert tool.main(_args(run['cfg'], run['ckpt'], pool, run['labeled'],
                           out, '--pool-root', str(run['img']),
                           '--labeled-root', str(run['img']),
                           '--list-suffix', '.tif', '--redistribute',
                           budget=10)) == 0
    rows = [ln.split('\t') for ln in (out / 'pool/unreadable.tsv')
            .read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == extra
    assert rows[0][1].startswith('unreadable: OSError: zero-byte file')
    assert 'expected 6 bands, got 5' in rows[2][1]
    assert rows[3][1].startswith('no valid pixels')
    assert 'no such file' in rows[4][1]
    summary = json.loads((out / 'summary.json').read_text())
    assert (summary['unreadable'], summary['no_valid_pixels'],
            summary['scored'], summary['selected']) == (4, 1, 20, 10)
    assert not {s[0] for s in _selected(out)} & set(extra)


def test_clear_errors_before_any_scoring(run, tool, tmp_path, capsys):
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'zero.tif').write_bytes(b'')
    (bad / 'corrupt.tif').write_bytes(b'not a tiff')
    cases = [
        (dict(pool=bad), dict(budget=1), 'no readable image in pool'),
        (dict(), dict(budget=200), 'budget 200 is larger than the pool '
         '(89 images'),
        (dict(), dict(clusters=11), 'has 10 images, fewer than --clusters '
         '11'),
    ]
    for k, (paths, kw, msg) in enumerate(cases):
        out = tmp_path / f'out{k}'
        rc = tool.main(_args(run['cfg'], run['ckpt'],
                             paths.get('pool', run['pool']), run['labeled'],
                             out, '--pool-root', str(run['img']),
                             '--labeled-root', str(run['img']),
                             '--list-suffix', '.tif', **kw))
        assert rc == 2
        assert msg in capsys.readouterr().err
        assert not (out / 'pool').exists() and not (out / 'labeled').exists()


# -- subprocess runs: kill-and-resume, 2 processes -------------------------
@pytest.fixture(scope='module')
def big_pool(run, tmp_path_factory):
    """356 small images (the 89 tiles, four copies each)."""
    d = tmp_path_factory.mktemp('bigpool')
    names = run['pool'].read_text().split()
    lines = []
    for k in range(4):
        for n in names:
            shutil.copy(run['img'] / n, d / f'c{k}_{n}')
            lines.append(f'c{k}_{n}')
    (d / 'pool.txt').write_text('\n'.join(lines) + '\n')
    return d / 'pool.txt'


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    return env


def _cmd(run, pool, out, budget=100):
    return [sys.executable, str(REPO / 'tools/select_data.py'),
            *_args(run['cfg'], run['ckpt'], pool, run['labeled'], out,
                   '--labeled-root', str(run['img']), '--list-suffix', '.tif',
                   '--chunk-size', '8',
                   '--batch-size', '4', budget=budget)]


@pytest.fixture(scope='module')
def uninterrupted(run, big_pool, tmp_path_factory):
    out = tmp_path_factory.mktemp('full') / 'out'
    subprocess.run(_cmd(run, big_pool, out), env=_env(), check=True,
                   capture_output=True, timeout=300)
    return out


def _same_result(a, b):
    assert (a / 'selected.txt').read_bytes() == (b / 'selected.txt') \
        .read_bytes()
    assert (a / 'pool/scores.tsv').read_bytes() == \
        (b / 'pool/scores.tsv').read_bytes()
    assert np.array_equal(np.load(a / 'pool/features.npy'),
                          np.load(b / 'pool/features.npy'),
                          equal_nan=True)


def test_kill_and_resume_equals_uninterrupted(run, big_pool, uninterrupted,
                                              tmp_path):
    out = tmp_path / 'out'
    chunks = out / 'pool/chunks'
    proc = subprocess.Popen(_cmd(run, big_pool, out), env=_env(),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 240:
        done = len(list(chunks.glob('chunk_*.npz'))) if chunks.is_dir() \
            else 0
        if done >= 5 or proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len(list(chunks.glob('chunk_*.npz')))
    assert 5 <= done < 45, done  # killed mid-way, not before, not after
    assert not (out / 'selected.txt').exists()
    res = subprocess.run(_cmd(run, big_pool, out), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['rank0_resumed'] >= 5 * 8
    assert summary['rank0_resumed'] + summary['rank0_scored'] == 356
    merge = json.loads((out / 'pool/merge.json').read_text())
    assert merge['chunks'] == 45 and merge['unreadable'] == 0
    assert merge['ok'] + merge['no valid pixels'] == 356
    _same_result(out, uninterrupted)


def test_two_gloo_processes_equal_one(run, big_pool, uninterrupted,
                                      tmp_path):
    out = tmp_path / 'out'
    cmd = _cmd(run, big_pool, out)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
           '2', '--master_port', str(free_port()), *cmd[1:],
           '--launcher', 'pytorch']
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                         timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['world_size'] == 2
    # rank 0 scored its chunks only (even ids: 22 of 8 images + chunk 44)
    assert summary["rank0_scored"] == 22 * 8 + 4
    _same_result(out, uninterrupted)
