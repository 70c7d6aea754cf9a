"""Per-band mean/std over rasters, skipping nodata (and NaN / inf), read
block by block."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
from rasterio.windows import Window

from .raster_stack import RasterStack


def compute_band_stats(scenes: Sequence, bands: Optional[Sequence[int]] = None,
                       nodata: Optional[float] = None, block: int = 1024
                       ) -> Tuple[List[float], List[float], List[int]]:
    """Mean, standard deviation and valid-pixel count per band.

    ``scenes``: each a raster path or a list of single-band files; all must
    give the same number of bands. A band's nodata pixels are left out of
    that band's statistics (non-finite values are nodata too, see
    :class:`~s5_mm.geo.raster_stack.RasterStack`). Blocks are merged with
    Chan's update, so large means do not cancel the variance.
    """
    n = mean = m2 = None
    files = []
    for scene in scenes:
        with RasterStack(scene, bands=bands, nodata=nodata) as stack:
            files += stack.abs_paths
            if n is None:
                n = np.zeros(stack.count)
                mean = np.zeros(stack.count)
                m2 = np.zeros(stack.count)
            elif stack.count != len(n):
                raise ValueError(f'{stack.abs_paths} has {stack.count} '
                                 f'bands, earlier scenes {len(n)}')
            for r in range(0, stack.height, block):
                for c in range(0, stack.width, block):
                    win = Window(c, r, min(block, stack.width - c),
                                 min(block, stack.height - r))
                    data, invalid = stack.read(win, dtype=np.float64)
                    for b in range(stack.count):
                        v = data[b][~invalid[b]]
                        if v.size == 0:
                            continue
                        nb, mb = v.size, v.mean()
                        m2b = ((v - mb) ** 2).sum()
                        delta = mb - mean[b]
                        tot = n[b] + nb
                        mean[b] += delta * nb / tot
                        m2[b] += m2b + delta ** 2 * n[b] * nb / tot
                        n[b] = tot
    if n is None:
        raise ValueError('no scenes given')
    empty = [i + 1 for i in range(len(n)) if n[i] == 0]
    if empty:
        raise ValueError(f'bands {empty} have no valid pixels (all nodata '
                         f'or non-finite) in {files}')
    std = np.sqrt(m2 / n)
    return mean.tolist(), std.tolist(), n.astype(int).tolist()
