"""Predict large scenes window by window into georeferenced GeoTIFF class maps.

    python tools/infer_scene.py CONFIG CHECKPOINT SCENE [SCENE ...] --out DIR
        [--tile-size 512] [--stride 384] [--batch-size 4]
        [--merge average|center] [--dataset NAME] [--confidence] [--entropy]
        [--quicklook] [--device cpu|cuda] [--dtype fp32|bf16|fp16]
        [--cfg-options k=v ...]

A SCENE is a raster path, or comma-separated single-band files stacked in
that order (e.g. a Landsat band set). Writes DIR/<stem>_pred.tif (and
<stem>_pred_confidence.tif, <stem>_pred_entropy.tif, <stem>_pred.png), each
under a temporary name first, so a failed run leaves earlier outputs as they
were; two scenes with the same <stem> are refused. NaN / inf pixels are
nodata. A checkpoint that does not cover the model is refused unless
--allow-partial.
Normalisation is the config's data_preprocessor; bands (and nodata) come from
the LoadGeoImageFromFile step of the config's test pipeline when present.
"""
import argparse
import importlib.util
import os
import sys
from pathlib import Path

# a python without the project's packages (not the virtual environment)
if not all(importlib.util.find_spec(m) for m in ('torch', 'mmengine',
                                                 's5_mm')):
    sys.exit(f'{sys.executable} lacks torch / mmengine / s5_mm: run the '
             'tools with the project environment, e.g. '
             f'.venv/bin/python {" ".join(sys.argv)}')

from mmengine.config import DictAction  # noqa: E402

from s5_mm.utils.cli import positive_int  # noqa: E402

DTYPES = {'fp32': None, 'bf16': 'bfloat16', 'fp16': 'float16'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Tiled inference on scenes')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('scenes', nargs='+', metavar='SCENE',
                   help='raster path, or comma-separated per-band files')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--tile-size', type=positive_int, default=512)
    p.add_argument('--stride', type=positive_int, default=None,
                   help='window step (default 3/4 of the tile size)')
    p.add_argument('--batch-size', type=positive_int, default=4)
    p.add_argument('--merge', choices=['average', 'center'],
                   default='average')
    p.add_argument('--dataset', default=None,
                   help='dataset head of a multi-dataset model')
    p.add_argument('--confidence', action='store_true')
    p.add_argument('--entropy', action='store_true')
    p.add_argument('--quicklook', action='store_true',
                   help='also write a colour PNG quick-look')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', choices=sorted(DTYPES), default='fp32',
                   help='autocast dtype for the model')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--allow-partial', action='store_true',
                   help='use a checkpoint that lacks some model weights or '
                   'has other shapes (refused by default)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if args.stride is not None and args.stride > args.tile_size:
        p.error(f'--stride {args.stride} is larger than --tile-size '
                f'{args.tile_size}: windows would leave gaps')
    return args


def geo_loading_args(cfg) -> dict:
    """``bands``/``nodata`` of LoadGeoImageFromFile in the test pipeline."""
    pipelines = []
    if cfg.get('test_pipeline'):
        pipelines.append(cfg.test_pipeline)
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    if ds.get('pipeline'):
        pipelines.append(ds.pipeline)
    for pipe in pipelines:
        for step in pipe:
            if step.get('type', '').split('.')[-1] == 'LoadGeoImageFromFile':
                return {k: step.get(k) for k in ('bands', 'nodata')}
    return dict(bands=None, nodata=None)


def scene_arg(text: str):
    parts = [s for s in text.split(',') if s]
    return parts[0] if len(parts) == 1 else parts


def output_stems(texts):
    """``(scene, stem)`` of every SCENE argument; two scenes with one stem
    would write the same output files, so that is refused naming both."""
    seen = {}
    out = []
    for text in texts:
        scene = scene_arg(text)
        if not scene:
            raise ValueError(f'empty SCENE argument {text!r}')
        first = scene if isinstance(scene, str) else scene[0]
        stem = Path(first).stem
        if stem in seen:
            raise ValueError(
                f'two scenes would both write {stem}_pred.tif: '
                f'{os.path.abspath(seen[stem])} and {os.path.abspath(first)};'
                ' run them with different --out folders')
        seen[stem] = first
        out.append((scene, stem))
    return out


def build_model(cfg, checkpoint, device='cpu', allow_partial=False):
    """The config's segmentor with the checkpoint's weights, refusing a
    checkpoint that does not cover the model (``allow_partial`` to accept);
    checkpoints without ``meta`` (bare state dicts) load too."""
    from mmseg.apis import init_model

    from s5_mm.utils.checkpoint import check_checkpoint_file, load_checked
    check_checkpoint_file(checkpoint)
    model = init_model(cfg, None, device='cpu')
    ckpt = load_checked(model, checkpoint, allow_partial)
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    if meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    return model.to(device).eval()


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401  (registers s5_mm modules)
    from s5_mm.apis.inference import infer_scene
    from s5_mm.utils.config import load_config, merge_cfg_options

    scenes = output_stems(args.scenes)
    cfg = load_config(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = build_model(cfg, args.checkpoint, args.device,
                        args.allow_partial)
    load = geo_loading_args(cfg)
    stride = args.stride or max(1, args.tile_size * 3 // 4)
    dtype = DTYPES[args.dtype]
    out_dir = Path(args.out)
    results = []
    for text, (scene, stem) in zip(args.scenes, scenes):
        res = infer_scene(
            model, scene, out_dir / f'{stem}_pred.tif',
            tile_size=args.tile_size, stride=stride,
            batch_size=args.batch_size, bands=load['bands'],
            nodata=load['nodata'], merge=args.merge,
            dataset_name=args.dataset, write_confidence=args.confidence,
            write_entropy=args.entropy,
            quicklook_png=(out_dir / f'{stem}_pred.png'
                           if args.quicklook else None),
            progress=not args.no_progress,
            autocast_dtype=getattr(torch, dtype) if dtype else None)
        print(f'{text}: {res["num_windows"]} windows -> {res["classes"]}')
        results.append(res)
    return results


if __name__ == '__main__':
    main()
