"""Sliding-window grids over a raster (for the tiler and tiled inference)."""
from __future__ import annotations

from typing import List, Tuple

from rasterio.windows import Window

EDGE_MODES = ('pad', 'shift', 'drop')


def _check(tile: int, stride: int):
    if int(tile) <= 0 or int(stride) <= 0:
        raise ValueError(f'tile size and stride must be positive, got '
                         f'tile={tile}, stride={stride}')


def window_offsets(length: int, tile: int, stride: int,
                   edge: str = 'shift') -> List[int]:
    """Start offsets of windows of size ``tile`` along an axis of ``length``.

    Offsets step by ``stride`` from 0 until a window reaches the end (the
    count MMSeg's slide inference uses). The last window then
    ``'pad'``: starts on the stride grid and may overhang the end;
    ``'shift'``: is moved back to end exactly at ``length`` (no padding; a
    window never exceeds ``length``, so an axis shorter than ``tile`` gets
    one window of that length); ``'drop'``: is removed unless it fits.
    """
    _check(tile, stride)
    if edge not in EDGE_MODES:
        raise ValueError(f'edge must be one of {EDGE_MODES}, got {edge!r}')
    n = max(length - tile + stride - 1, 0) // stride + 1
    offsets = [k * stride for k in range(n)]
    if edge == 'shift':
        offsets[-1] = max(length - tile, 0)
        if n > 1 and offsets[-1] == offsets[-2]:
            offsets.pop()
    elif edge == 'drop':
        offsets = [o for o in offsets if o + tile <= length]
    return offsets


def center_bounds(offsets: List[int], size: int,
                  length: int) -> List[Tuple[int, int]]:
    """Pixel range each window owns under center merging.

    Consecutive windows split their overlap at its midpoint; the first
    window owns the start of the axis and the last one its end, so the
    ranges tile ``[0, length)`` without gaps (needs ``stride <= size``).
    """
    bounds = []
    lo = 0
    for k, off in enumerate(offsets):
        if k + 1 < len(offsets):
            nxt = offsets[k + 1]
            if nxt > off + size:
                raise ValueError('center merge needs stride <= tile size '
                                 f'(gap between windows at {off} and {nxt})')
            hi = (nxt + off + size) // 2
        else:
            hi = length
        bounds.append((lo, hi))
        lo = hi
    return bounds


def sliding_windows(height: int, width: int, tile: int, stride: int,
                    edge: str = 'shift') -> List[Window]:
    """Row-major windows covering a ``height`` x ``width`` raster."""
    rows = window_offsets(height, tile, stride, edge)
    cols = window_offsets(width, tile, stride, edge)
    th = tile if edge != 'shift' else min(tile, height)
    tw = tile if edge != 'shift' else min(tile, width)
    return [Window(c, r, tw, th) for r in rows for c in cols]
