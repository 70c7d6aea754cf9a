"""Per-band mean/std of rasters (nodata left out), printed in config form.

    python tools/band_stats.py SCENE [SCENE ...] [--bands 4 3 2] [--nodata V]

A SCENE is a raster path (globs are expanded) or comma-separated single-band
files forming one band stack. Nodata and non-finite (NaN / inf) pixels are
left out. Paste the printed dict into the config's data_preprocessor.
"""
import argparse
import glob
import importlib.util
import os
import sys

# a python without the project's packages (not the virtual environment)
if not all(importlib.util.find_spec(m) for m in ('torch', 'mmengine',
                                                 's5_mm')):
    sys.exit(f'{sys.executable} lacks torch / mmengine / s5_mm: run the '
             'tools with the project environment, e.g. '
             f'.venv/bin/python {" ".join(sys.argv)}')

from s5_mm.utils.cli import positive_int  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Per-band mean/std')
    p.add_argument('scenes', nargs='+', metavar='SCENE')
    p.add_argument('--bands', type=positive_int, nargs='+', default=None)
    p.add_argument('--nodata', type=float, default=None)
    p.add_argument('--block', type=positive_int, default=1024)
    return p.parse_args(argv)


def expand(texts):
    """Scenes of the arguments; a glob that matches nothing is an error
    naming the folder searched."""
    scenes = []
    for text in texts:
        if ',' in text:
            scenes.append([s for s in text.split(',') if s])
        elif glob.has_magic(text):
            found = sorted(glob.glob(text))
            if not found:
                raise FileNotFoundError(
                    f'no file matches {text!r} in '
                    f'{os.path.abspath(os.path.dirname(text) or ".")}')
            scenes.extend(found)
        else:
            scenes.append(text)
    return scenes


def format_config(mean, std, count) -> str:
    fmt = lambda v: '[' + ', '.join(f'{x:.4f}' for x in v) + ']'  # noqa: E731
    return (f'# {len(mean)} bands, valid pixels per band: {count}\n'
            f'data_preprocessor = dict(\n    mean={fmt(mean)},\n'
            f'    std={fmt(std)},\n    bgr_to_rgb=False)')


def main(argv=None):
    args = parse_args(argv)
    from s5_mm.geo.stats import compute_band_stats

    mean, std, count = compute_band_stats(expand(args.scenes), args.bands,
                                          args.nodata, args.block)
    text = format_config(mean, std, count)
    print(text)
    return mean, std, count


if __name__ == '__main__':
    main()
