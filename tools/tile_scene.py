"""Cut a scene (and its label raster) into georeferenced GeoTIFF tiles.

    python tools/tile_scene.py SCENE --out DIR --tile-size 256 [--stride 128]
        [--label LABEL] [--bands 4 3 2] [--keep-nodata] [--edge pad|shift|drop]
        [--compress deflate]

A SCENE is a raster path or comma-separated single-band files. Without
--label tiles go to DIR; with it, image tiles to DIR/img and label tiles,
cut on the kept image windows and named like their image tile, to DIR/ann.
All-nodata image tiles are skipped unless --keep-nodata.

Before anything is written the label raster is checked to lie on the
image's pixel grid (size, geotransform, CRS equivalence) and both are probed
for truncation; tiles are cut into a hidden folder inside DIR and moved into
place only when all are written, so a failed run changes nothing in DIR.
"""
import argparse
import dataclasses
import importlib.util
import os
import shutil
import sys
from pathlib import Path

# a python without the project's packages (not the virtual environment)
if not all(importlib.util.find_spec(m) for m in ('torch', 'mmengine',
                                                 's5_mm')):
    sys.exit(f'{sys.executable} lacks torch / mmengine / s5_mm: run the '
             'tools with the project environment, e.g. '
             f'.venv/bin/python {" ".join(sys.argv)}')

from s5_mm.utils.cli import positive_int  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Tile a scene into GeoTIFFs')
    p.add_argument('scene', help='raster path, or comma-separated band files')
    p.add_argument('--out', required=True)
    p.add_argument('--tile-size', type=positive_int, required=True)
    p.add_argument('--stride', type=positive_int, default=None)
    p.add_argument('--label', default=None,
                   help='label raster on the same grid')
    p.add_argument('--bands', type=positive_int, nargs='+', default=None)
    p.add_argument('--keep-nodata', action='store_true')
    p.add_argument('--edge', choices=['pad', 'shift', 'drop'], default='pad')
    p.add_argument('--compress', default=None)
    return p.parse_args(argv)


def check_inputs(scene, label=None, bands=None):
    """Open and probe the scene (and label raster, checked to share the
    scene's grid) before any tile is written."""
    from s5_mm.geo.raster_stack import RasterStack
    with RasterStack(scene, bands=bands) as img:
        img.probe()
        if label is None:
            return
        with RasterStack(label) as lab:
            if lab.count != 1:
                raise ValueError(f'label raster {lab.abs_paths[0]} has '
                                 f'{lab.count} bands, expected 1')
            img.check_same_grid_as(lab, 'image and label rasters')
            lab.probe()


def _move_tiles(tiles, final_dir: Path):
    final_dir.mkdir(parents=True, exist_ok=True)
    moved = []
    for t in tiles:
        dst = final_dir / Path(t.path).name
        os.replace(t.path, dst)
        moved.append(dataclasses.replace(t, path=os.fspath(dst)))
    return moved


def main(argv=None):
    args = parse_args(argv)
    from s5_mm.geo.tiling import tile_raster
    from s5_mm.utils.atomic import partial_path

    parts = [s for s in args.scene.split(',') if s]
    if not parts:
        raise ValueError(f'empty SCENE argument {args.scene!r}')
    scene = parts[0] if len(parts) == 1 else parts
    check_inputs(scene, args.label, args.bands)
    stem = Path(parts[0]).stem
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(partial_path(out / 'tiles'))
    try:
        tiles = tile_raster(scene, staging / 'img', args.tile_size,
                            args.stride, skip_nodata=not args.keep_nodata,
                            bands=args.bands, compress=args.compress,
                            edge=args.edge, stem=stem)
        labels = []
        if args.label:
            labels = tile_raster(args.label, staging / 'ann', args.tile_size,
                                 windows=[t.window for t in tiles],
                                 compress=args.compress, stem=stem)
        img_dir = out / 'img' if args.label else out
        tiles = _move_tiles(tiles, img_dir)
        print(f'{len(tiles)} image tiles -> {img_dir}')
        if args.label:
            labels = _move_tiles(labels, out / 'ann')
            print(f'{len(labels)} label tiles -> {out / "ann"}')
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tiles


if __name__ == '__main__':
    main()
