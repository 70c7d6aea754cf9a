"""Tiled scene inference: windows/s and peak RSS against scene size.

    python benchmarks/scene_inference.py [--sizes 2048 8192 16384]
        [--tile-size 512] [--stride 384] [--batch-size 4] [--bands 4]
        [--device cpu|cuda] [--dtype fp32|bf16] [--workdir DIR]

Writes synthetic 4-band uint16 GeoTIFF scenes (tiled, deflate, a nodata
border; written block by block, never whole) and runs
``s5_mm.apis.infer_scene`` with a tiny UNet+FCN segmentor on each, one fresh
subprocess per scene so peak RSS (``ru_maxrss``) is per scene. It also times
the model alone on random windows of the same size: end-to-end windows/s
close to that means the model, not I/O, limits throughput.
Goal: peak RSS within 10 % from the smallest to the largest scene.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

DTYPES = {'fp32': None, 'bf16': 'bfloat16', 'fp16': 'float16'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[2048, 8192, 16384])
    p.add_argument('--tile-size', type=int, default=512)
    p.add_argument('--stride', type=int, default=448)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--bands', type=int, default=4)
    p.add_argument('--classes', type=int, default=6)
    p.add_argument('--merge', choices=['average', 'center'], default='average')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', choices=sorted(DTYPES), default='fp32')
    p.add_argument('--workdir', default=None,
                   help='where scenes are written (default: a temp dir)')
    p.add_argument('--child', type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument('--scene', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def write_scene(path, size, bands, block=512):
    """Smooth 'reflectance' + noise, nodata (0) border; block by block."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(size)
    prof = dict(driver='GTiff', width=size, height=size, count=bands,
                dtype='uint16', nodata=0, crs='EPSG:32633',
                transform=from_origin(400000, 5000000, 10, 10), tiled=True,
                blockxsize=256, blockysize=256, compress='deflate',
                BIGTIFF='IF_SAFER')
    freq = np.linspace(1, 3, bands)[:, None, None] * 2 * np.pi / 1500
    border = size // 50
    with rasterio.open(path, 'w', **prof) as dst:
        for r in range(0, size, block):
            for c in range(0, size, block):
                h, w = min(block, size - r), min(block, size - c)
                yy, xx = np.mgrid[r:r + h, c:c + w]
                val = (2000 + 1500 * np.sin(freq * xx) * np.cos(freq * yy)
                       + rng.normal(0, 50, (bands, h, w)))
                data = np.clip(val, 1, 65535).astype(np.uint16)
                data[:, (yy < border) | (xx < border)] = 0
                dst.write(data, window=Window(c, r, w, h))


def tiny_model(bands, classes, device):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import s5_mm  # noqa: F401  (MultiBandSegDataPreProcessor)
    register_all_modules(init_default_scope=False)
    init_default_scope('mmseg')
    norm = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='MultiBandSegDataPreProcessor',
                               mean=[2000.0] * bands, std=[1000.0] * bands,
                               bgr_to_rgb=False),
        backbone=dict(type='UNet', in_channels=bands, base_channels=4,
                      num_stages=2, strides=(1, 1), enc_num_convs=(1, 1),
                      dec_num_convs=(1, ), downsamples=(False, ),
                      enc_dilations=(1, 1), dec_dilations=(1, ),
                      norm_cfg=norm),
        decode_head=dict(type='FCNHead', in_channels=4, in_index=-1,
                         channels=4, num_convs=1, concat_input=False,
                         num_classes=classes, norm_cfg=norm,
                         loss_decode=dict(type='CrossEntropyLoss')),
        train_cfg=dict(), test_cfg=dict(mode='whole'))
    return MODELS.build(cfg).to(device).eval()


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args):
    import torch

    from s5_mm.apis.inference import infer_scene, window_logits
    dtype = getattr(torch, DTYPES[args.dtype]) if DTYPES[args.dtype] else None
    model = tiny_model(args.bands, args.classes, args.device)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (
        lambda: None)
    batch = np.random.default_rng(0).uniform(
        0, 4000, (args.batch_size, args.bands, args.tile_size,
                  args.tile_size)).astype(np.float32)
    with torch.no_grad():
        for _ in range(2):
            window_logits(model, batch, autocast_dtype=dtype)
        sync()
        t, n = time.perf_counter(), 0
        while time.perf_counter() - t < 5 or n < 3:
            window_logits(model, batch, autocast_dtype=dtype)
            n += 1
        sync()
        model_wps = n * args.batch_size / (time.perf_counter() - t)
    rss_before = rss_mb()
    out = os.path.join(os.path.dirname(args.scene), f'pred_{args.child}.tif')
    t = time.perf_counter()
    res = infer_scene(model, args.scene, out, tile_size=args.tile_size,
                      stride=args.stride, batch_size=args.batch_size,
                      merge=args.merge, progress=False, autocast_dtype=dtype)
    sync()
    dt = time.perf_counter() - t
    os.remove(out)
    print(json.dumps(dict(
        size=args.child, windows=res['num_windows'], seconds=round(dt, 2),
        windows_per_s=round(res['num_windows'] / dt, 2),
        model_only_windows_per_s=round(model_wps, 2),
        rss_before_mb=round(rss_before, 1), peak_rss_mb=round(rss_mb(), 1))))


def main(argv=None):
    args = parse_args(argv)
    if args.child is not None:
        return child(args)
    work = args.workdir or tempfile.mkdtemp(prefix='s5_scene_bench_')
    os.makedirs(work, exist_ok=True)
    rows = []
    for size in args.sizes:
        scene = os.path.join(work, f'scene_{size}_{args.bands}b.tif')
        if not os.path.exists(scene):
            t = time.perf_counter()
            write_scene(scene, size, args.bands)
            print(f'wrote {scene} ({os.path.getsize(scene) / 2**20:.0f} MiB) '
                  f'in {time.perf_counter() - t:.0f} s', flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), '--child', str(size),
               '--scene', scene, '--tile-size', str(args.tile_size),
               '--stride', str(args.stride), '--batch-size',
               str(args.batch_size), '--bands', str(args.bands), '--classes',
               str(args.classes), '--merge', args.merge, '--device',
               args.device, '--dtype', args.dtype]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    lo, hi = rows[0]['peak_rss_mb'], rows[-1]['peak_rss_mb']
    print(f'peak RSS {lo:.0f} -> {hi:.0f} MiB ({100 * (hi - lo) / lo:+.1f} %) '
          f'from {rows[0]["size"]} to {rows[-1]["size"]} px a side')
    return rows


if __name__ == '__main__':
    main()
