"""Cut a scene (and its label raster) into georeferenced GeoTIFF tiles.

    python tools/tile_scene.py SCENE --out DIR --tile-size 256 [--stride 128]
        [--label LABEL] [--bands 4 3 2] [--keep-nodata] [--edge pad|shift|drop]
        [--compress deflate]

A SCENE is a raster path or comma-separated single-band files. Without
--label tiles go to DIR; with it, image tiles to DIR/img and label tiles,
cut on the kept image windows and named like their image tile, to DIR/ann.
All-nodata image tiles are skipped unless --keep-nodata.
"""
import argparse
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Tile a scene into GeoTIFFs')
    p.add_argument('scene', help='raster path, or comma-separated band files')
    p.add_argument('--out', required=True)
    p.add_argument('--tile-size', type=int, required=True)
    p.add_argument('--stride', type=int, default=None)
    p.add_argument('--label', default=None,
                   help='label raster on the same grid')
    p.add_argument('--bands', type=int, nargs='+', default=None)
    p.add_argument('--keep-nodata', action='store_true')
    p.add_argument('--edge', choices=['pad', 'shift', 'drop'], default='pad')
    p.add_argument('--compress', default=None)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from s5_mm.geo.tiling import tile_raster

    parts = [s for s in args.scene.split(',') if s]
    scene = parts[0] if len(parts) == 1 else parts
    stem = Path(parts[0]).stem
    out = Path(args.out)
    img_dir = out / 'img' if args.label else out
    tiles = tile_raster(scene, img_dir, args.tile_size, args.stride,
                        skip_nodata=not args.keep_nodata, bands=args.bands,
                        compress=args.compress, edge=args.edge, stem=stem)
    print(f'{len(tiles)} image tiles -> {img_dir}')
    if args.label:
        labels = tile_raster(args.label, out / 'ann', args.tile_size,
                             windows=[t.window for t in tiles],
                             compress=args.compress, stem=stem)
        print(f'{len(labels)} label tiles -> {out / "ann"}')
    return tiles


if __name__ == '__main__':
    main()
