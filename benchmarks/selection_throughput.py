"""Data-selection benchmarks (issue 14).

    python benchmarks/selection_throughput.py score  [--batches 3]
    python benchmarks/selection_throughput.py rss    [--sizes 10000 100000]
    python benchmarks/selection_throughput.py kmeans [--pool 1000000]
        [--labelled 40000] [--dim 768] [--clusters 64]
        [--backends sklearn minibatch faiss]

``score``: images/s of :class:`SegScorer` (model side: preprocess,
backbone, decode head, entropy, pooled feature) for the land-cover tiny
model at 32 px and ViT-B + UperNet at 512 (fp32 on CPU; bf16 autocast on a
GPU when one is present), plus the whole tool path (loading GeoTIFF tiles,
chunk files) for the tiny model.
``rss``: peak RSS of a full selection run (scoring, merge, selection) in a
fresh process for pool lists of each size (entries repeat the land-cover
tiles; with ``--real-every K`` only every K-th is a real tile, the others
missing files); flat memory = the same peak for 10k and 100k entries.
``kmeans``: time of K-Means (labelled) + cosine assignment + quota fill
for synthetic L2-normalised features (float16 memory map, as the tool
stores them), per K-Means backend.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _model(cfg_path, key=None):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(cfg_path))
    return MODELS.build(cfg.model).eval(), cfg


def bench_score(args):
    import torch

    from s5_mm.selection import SegScorer
    rows = []
    cuda = torch.cuda.is_available()
    setups = [
        ('tiny (land cover, 6 bands)', REPO / 'configs/demo/'
         'upernet_vit-tiny_landcover.py', (32, 32), 6, 64),
        ('ViT-B + UperNet (3 bands)', REPO / 'configs/s4p/vit-b_rs4p1m.py',
         (512, 512), 3, 64 if cuda else 2),
    ]
    for name, cfg_path, size, bands, bs in setups:
        model, _ = _model(cfg_path)
        dev = 'cuda' if cuda else 'cpu'
        model.to(dev)
        scorer = SegScorer(model, size, bg_index=0,
                           autocast='bf16' if cuda else None)
        imgs = [torch.rand(bands, *size) * 255 for _ in range(bs)]
        valid = [torch.ones(size, dtype=torch.bool) for _ in range(bs)]
        scorer.score_images(imgs, valid)  # warm-up
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.batches):
            scorer.score_images(imgs, valid)
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        rows.append(dict(model=name, size=size[0], batch=bs,
                         dtype='bf16 autocast' if cuda else 'fp32',
                         device=dev, images_per_s=bs * args.batches / dt))
        print(rows[-1], flush=True)
    rows.append(_tool_throughput(args))
    print(rows[-1], flush=True)
    return rows


def _tiles():
    """Training tiles with at least one valid pixel (27 of 99 have none:
    their band 6 is nodata)."""
    import rasterio

    from s5_mm.utils.tools import load_tool
    prepare_landcover = load_tool(
        'dataset_converters/prepare_landcover.py').prepare_landcover
    root = Path(tempfile.gettempdir()) / 's5_sel_bench_tiles'
    prepare_landcover(root, fetch=False)
    out = []
    for p in sorted((root / 'img_dir/train').glob('*.tif')):
        with rasterio.open(p) as s:
            if (~np.ma.getmaskarray(s.read(masked=True)).any(0)).any():
                out.append(p)
    return out


def _tool_throughput(args):
    """End to end: loading tiles + scoring + chunk files (tiny model)."""
    import torch
    from mmengine.runner import save_checkpoint
    tiles = _tiles()
    tmp = Path(tempfile.mkdtemp(prefix='s5_sel_bench_'))
    model, cfg = _model(REPO / 'configs/demo/upernet_vit-tiny_landcover.py')
    ckpt = tmp / 'rand.pth'
    save_checkpoint(model.state_dict(), str(ckpt))
    n = 2000
    pool = tmp / 'pool.txt'
    pool.write_text(''.join(f'{tiles[i % len(tiles)]}\n' for i in range(n)))
    lab = tmp / 'lab.txt'
    lab.write_text(''.join(f'{t}\n' for t in tiles[:10]))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / 'tools/select_data.py'),
                    str(REPO / 'configs/demo/upernet_vit-tiny_landcover.py'),
                    str(ckpt), '--pool', str(pool), '--labeled', str(lab),
                    '--budget', '100', '--clusters', '4', '--all-classes',
                    '--out', str(tmp / 'out'), '--no-progress',
                    '--batch-size', '64', '--chunk-size', '512',
                    '--num-workers', str(args.workers)],
                   check=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    wall = time.perf_counter() - t0
    s = json.loads((tmp / 'out/summary.json').read_text())
    del torch
    return dict(model='tiny, whole tool (GeoTIFF loading, chunks, merge)',
                size=32, batch=64, images=n, dtype='fp32', device='cpu',
                images_per_s=n / s['score_seconds'],
                wall_s_incl_start=wall)


def _peak_rss_child(pool, lab, ckpt, out, workers):
    code = f'''
import resource, sys
sys.argv = ["select_data.py", {str(REPO / "configs/demo/upernet_vit-tiny_landcover.py")!r},
            {str(ckpt)!r}, "--pool", {str(pool)!r}, "--labeled", {str(lab)!r},
            "--budget", "1000", "--clusters", "4", "--all-classes", "--out",
            {str(out)!r}, "--no-progress", "--batch-size", "128",
            "--chunk-size", "1024", "--num-workers", "{workers}"]
import runpy
try:
    runpy.run_path({str(REPO / "tools/select_data.py")!r}, run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env=dict(os.environ,
                                             PYTHONPATH=str(REPO)))
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    kb = int(res.stdout.split('PEAK_RSS_KB')[1].split()[0])
    return kb / 1024, time.perf_counter() - t0


def bench_rss(args):
    from mmengine.runner import save_checkpoint
    tiles = _tiles()
    tmp = Path(tempfile.mkdtemp(prefix='s5_sel_rss_'))
    model, _ = _model(REPO / 'configs/demo/upernet_vit-tiny_landcover.py')
    ckpt = tmp / 'rand.pth'
    save_checkpoint(model.state_dict(), str(ckpt))
    lab = tmp / 'lab.txt'
    lab.write_text(''.join(f'{t}\n' for t in tiles[:10]))
    rows = []
    for n in args.sizes:
        pool = tmp / f'pool_{n}.txt'
        with open(pool, 'w') as f:
            for i in range(n):
                # --real-every K: other entries are missing files (skipped
                # and listed), so a loaded CPU can still stream 100k lines
                real = args.real_every <= 1 or i % args.real_every == 0
                f.write(f'{tiles[i % len(tiles)]}\n' if real else
                        f'/nonexistent/missing_{i}.tif\n')
        mib, wall = _peak_rss_child(pool, lab, ckpt, tmp / f'out_{n}',
                                    args.workers)
        rows.append(dict(entries=n, scored=-(-n // max(1, args.real_every)),
                         peak_rss_mib=mib, wall_s=wall))
        print(rows[-1], flush=True)
    return rows


def bench_kmeans(args):
    from s5_mm.selection.diversity import select_diverse
    rng = np.random.default_rng(0)
    d, k = args.dim, args.clusters
    centres = rng.standard_normal((k, d)).astype(np.float32)

    def feats(n, out):
        for s in range(0, n, 100000):
            m = min(n, s + 100000) - s
            x = centres[rng.integers(0, k, m)] + 0.8 * rng.standard_normal(
                (m, d), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[s:s + m] = x
        return out

    tmp = Path(tempfile.mkdtemp(prefix='s5_sel_km_'))
    pool = np.lib.format.open_memmap(tmp / 'pool.npy', 'w+', np.float16,
                                     (args.pool, d))
    feats(args.pool, pool)
    pool.flush()
    pool = np.load(tmp / 'pool.npy', mmap_mode='r')
    lab = feats(args.labelled, np.empty((args.labelled, d), np.float16))
    ent = rng.random(args.pool)
    budget = args.pool // 2
    rows = []
    for backend in args.backends:
        try:
            t0 = time.perf_counter()
            r = select_diverse(lab, pool, ent, budget, k, backend=backend)
            total = time.perf_counter() - t0
        except ImportError as e:
            print(f'{backend}: {e}')
            continue
        rows.append(dict(backend=backend, pool=args.pool,
                         labelled=args.labelled, dim=d, clusters=k,
                         total_s=total, **{f'{a}_s': b for a, b in
                                           r['seconds'].items()},
                         selected=int(len(r['selected'])),
                         peak_rss_mib=resource.getrusage(
                             resource.RUSAGE_SELF).ru_maxrss / 1024))
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('part', choices=['score', 'rss', 'kmeans'])
    p.add_argument('--batches', type=int, default=3)
    p.add_argument('--workers', type=int, default=0)
    p.add_argument('--sizes', type=int, nargs='+', default=[10000, 100000])
    p.add_argument('--real-every', type=int, default=1,
                   help='rss: one real tile every K entries (default all)')
    p.add_argument('--pool', type=int, default=1000000)
    p.add_argument('--labelled', type=int, default=40000)
    p.add_argument('--dim', type=int, default=768)
    p.add_argument('--clusters', type=int, default=64)
    p.add_argument('--backends', nargs='+',
                   default=['sklearn', 'minibatch', 'faiss'])
    p.add_argument('--json', help='append the rows to this JSON file')
    args = p.parse_args(argv)
    rows = dict(score=bench_score, rss=bench_rss,
                kmeans=bench_kmeans)[args.part](args)
    if args.json:
        old = json.loads(Path(args.json).read_text()) if Path(
            args.json).is_file() else {}
        old[args.part] = rows
        Path(args.json).write_text(json.dumps(old, indent=2))
    return rows


if __name__ == '__main__':
    main()
