"""Cut a scene (image or label raster) into georeferenced GeoTIFF tiles.

Windows start at the scene's top-left corner and step by ``stride``; each tile
is named after its top-left map coordinates and keeps the scene's CRS, the
window's geotransform, dtype and nodata. This reproduces the SpaceNet/solaris
tiler that wrote ``tiling_oracle`` (pixels, geotransforms and names).

Edge handling (``edge``): ``'pad'`` (default) keeps every tile at
``tile_size`` and fills the part beyond the scene with nodata (0 when the
scene has none), so label tiles get nodata -> ignore there; ``'shift'`` moves
the last row/column of tiles back inside the scene; ``'drop'`` omits tiles
that do not fit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import rasterio
from rasterio.windows import Window

from .raster_stack import RasterStack
from .windows import sliding_windows


@dataclass(frozen=True)
class Tile:
    """One written tile: file, window in the scene, top-left map x/y, and the
    fraction of its pixels valid in every band."""
    path: str
    window: Window
    x: float
    y: float
    valid_fraction: float


def format_coord(v: float) -> str:
    """Map coordinate for a file name: integers bare, else 10 digits."""
    r = round(v)
    if abs(v - r) < 1e-6:
        return str(int(r))
    return format(v, '.10g')


def tile_raster(src, out_dir, tile_size: int, stride: Optional[int] = None, *,
                skip_nodata: bool = True,
                windows: Optional[Sequence[Window]] = None,
                name_fmt: str = '{stem}_{x}_{y}.tif',
                bands: Optional[Sequence[int]] = None,
                compress: Optional[str] = None, edge: str = 'pad',
                stem: Optional[str] = None) -> List[Tile]:
    """Write tiles of ``src`` to ``out_dir``; return them in row-major order.

    Args:
        src: a raster path or a list of single-band files (stacked in order).
        tile_size / stride: window size and step in pixels (stride defaults
            to ``tile_size``).
        skip_nodata: skip tiles whose pixels are nodata in every band.
        windows: write exactly these windows (no skipping), e.g. the image
            tiles' windows when tiling the matching label raster.
        name_fmt: file name; fields ``stem``, ``x``, ``y`` (top-left map
            coordinates, see :func:`format_coord`), ``col``, ``row``.
        bands: 1-based bands of a multi-band file to keep, in order.
        compress: GeoTIFF compression (e.g. ``'deflate'``), None for none.
        edge: ``'pad'``, ``'shift'`` or ``'drop'`` (module docstring).
        stem: name stem, default the (first) source file's stem.
    """
    stride = stride or tile_size
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tiles: List[Tile] = []
    seen = {}
    with RasterStack(src, bands=bands) as stack:
        if stem is None:
            stem = Path(stack.paths[0]).stem
        given = windows is not None
        if not given:
            windows = sliding_windows(stack.height, stack.width, tile_size,
                                      stride, edge)
        for win in windows:
            win = Window(int(win.col_off), int(win.row_off), int(win.width),
                         int(win.height))
            data, invalid = stack.read(win, boundless=True)
            all_bad = invalid.all(axis=0)
            if skip_nodata and not given and all_bad.all():
                continue
            transform = stack.transform @ rasterio.Affine.translation(
                win.col_off, win.row_off)
            x, y = transform.c, transform.f
            name = name_fmt.format(stem=stem, x=format_coord(x),
                                   y=format_coord(y), col=win.col_off,
                                   row=win.row_off)
            if name in seen:
                raise ValueError(f'tile name {name!r} repeats for windows '
                                 f'{seen[name]} and {win}; use a name_fmt '
                                 'with {col}/{row}')
            seen[name] = win
            path = os.fspath(out_dir / name)
            profile = stack.profile(width=win.width, height=win.height,
                                    transform=transform)
            if compress:
                profile['compress'] = compress
            with rasterio.open(path, 'w', **profile) as dst:
                dst.write(data)
            tiles.append(Tile(path, win, x, y,
                              float(1.0 - invalid.any(axis=0).mean())))
    return tiles
