"""Merging window logits of a scene into GeoTIFFs, with bounded memory.

Model-free (numpy and rasterio); :func:`s5_mm.apis.inference.infer_scene`
feeds it the logits of its windows.

Windows follow MMSeg's slide-inference grid (step ``stride``, last window
moved back inside the scene). Logits of overlapping windows are averaged
(``merge='average'``, as MMSeg's ``slide_inference``) or each pixel takes the
logits of the window whose centre part holds it (``merge='center'``: overlaps
are split at their midpoints, so with ``(tile_size - stride) / 2`` at least
the model's receptive-field radius the result equals whole-image inference).

Memory does not grow with the scene: columns are processed in bands of
``chunk_width`` pixels; within a band a ``tile_size``-row accumulator rolls
down the scene and finished rows are written out. Logits that windows of one
band put into the next band (at most ``tile_size`` columns) are spilled to a
temporary file and read back, in the same row order, by the next band.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import (Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple)

import numpy as np
import rasterio
from rasterio.windows import Window

from s5_mm.utils.atomic import atomic_output, commit, discard, partial_path

from .raster_stack import RasterStack
from .windows import center_bounds, window_offsets

CLASS_NODATA = 255
MERGE_MODES = ('average', 'center')

# ((row index, column index), logits (K, h, w), invalid (h, w))
WindowLogits = Tuple[Tuple[int, int], np.ndarray, np.ndarray]


def default_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """Distinct colours, fixed for a given class count."""
    rng = np.random.RandomState(12345)
    return [tuple(int(v) for v in rng.randint(0, 256, 3))
            for _ in range(num_classes)]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over axis 0 of ``(K, h, w)`` logits."""
    z = logits - logits.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return z


@dataclass(frozen=True)
class WindowGrid:
    """The windows of a scene and their split into column bands.

    Window ``(i, k)`` starts at row ``rows[i]``, column ``cols[k]`` and has
    size ``tile_h x tile_w``; it contributes its part
    ``row_bounds[i] x col_bounds[k]`` to the output. Band ``j`` covers
    columns ``[j * band_width, (j + 1) * band_width)`` and owns the windows
    whose contributed part starts there.
    """
    height: int
    width: int
    tile_h: int
    tile_w: int
    rows: List[int]
    cols: List[int]
    row_bounds: List[Tuple[int, int]]
    col_bounds: List[Tuple[int, int]]
    band_width: int
    owned: List[List[int]]

    @classmethod
    def build(cls, height: int, width: int, tile_size: int, stride: int,
              merge: str = 'average', chunk_width: Optional[int] = None,
              block_size: int = 256) -> 'WindowGrid':
        """``chunk_width`` (default 2048) is rounded up to ``block_size``
        (the outputs' GeoTIFF tile) and to at least one window."""
        if merge not in MERGE_MODES:
            raise ValueError(f'merge must be one of {MERGE_MODES}, '
                             f'got {merge!r}')
        th, tw = min(tile_size, height), min(tile_size, width)
        rows = window_offsets(height, tile_size, stride, 'shift')
        cols = window_offsets(width, tile_size, stride, 'shift')
        if merge == 'center':
            rb = center_bounds(rows, th, height)
            cb = center_bounds(cols, tw, width)
        else:
            rb = [(o, o + th) for o in rows]
            cb = [(o, o + tw) for o in cols]
        bw = max(chunk_width or 2048, tw)
        bw = -(-bw // block_size) * block_size
        n_bands = -(-width // bw)
        owned = [[k for k in range(len(cols))
                  if j * bw <= cb[k][0] < (j + 1) * bw]
                 for j in range(n_bands)]
        return cls(height, width, th, tw, rows, cols, rb, cb, bw, owned)

    @property
    def num_bands(self) -> int:
        return len(self.owned)

    @property
    def num_windows(self) -> int:
        return len(self.rows) * len(self.cols)

    def window(self, i: int, k: int) -> Window:
        return Window(self.cols[k], self.rows[i], self.tile_w, self.tile_h)

    def band_windows(self, j: int) -> List[Tuple[int, int]]:
        """Windows of band ``j``, row of windows by row of windows."""
        return [(i, k) for i in range(len(self.rows)) for k in self.owned[j]]

    def band_span(self, j: int) -> Tuple[int, int, int]:
        """``(x0, x1, ext)``: own columns ``[x0, x1)``; its accumulator is
        ``ext`` wide (own columns plus the halo into band ``j + 1``)."""
        x0, x1 = j * self.band_width, min((j + 1) * self.band_width,
                                          self.width)
        return x0, x1, min(x1 + self.tile_w, self.width) - x0


def _sibling(out_path: Path, suffix: str) -> str:
    return os.fspath(out_path.with_name(f'{out_path.stem}_{suffix}.tif'))


class SceneOutputs:
    """The output GeoTIFFs of a scene: class map, confidence, entropy.

    ``out_path`` gets the class map (uint8, nodata 255 on invalid pixels;
    tiled, deflate-compressed, the scene's CRS and transform);
    ``<stem>_confidence.tif`` (max softmax probability) and
    ``<stem>_entropy.tif`` (softmax entropy in nats) beside it are float32
    with nodata NaN. A one-logit (binary) head gives class ``p > threshold``
    (default 0.5) with ``p`` its sigmoid.

    The files are written under hidden temporary names in the same folder
    and renamed to ``paths`` by :meth:`commit` (a ``with`` block commits when
    it ends without an error); :meth:`close` without a commit removes them,
    so a failed run leaves earlier outputs of the same names untouched.
    """

    def __init__(self, stack: RasterStack, out_path, *,
                 write_confidence: bool = False, write_entropy: bool = False,
                 block_size: int = 256, threshold: Optional[float] = None):
        out_path = Path(out_path)
        self.paths: Dict[str, Optional[str]] = {
            'classes': os.fspath(out_path),
            'confidence': (_sibling(out_path, 'confidence')
                           if write_confidence else None),
            'entropy': _sibling(out_path, 'entropy') if write_entropy else None
        }
        self.threshold = 0.5 if threshold is None else threshold
        self._dsts: Dict[str, rasterio.io.DatasetWriter] = {}
        self._partials: Dict[str, str] = {}
        self.committed = False
        kinds = (('classes', 'uint8', CLASS_NODATA),
                 ('confidence', 'float32', float('nan')),
                 ('entropy', 'float32', float('nan')))
        try:
            for key, dtype, nodata in kinds:
                if self.paths[key] is not None:
                    self._partials[key] = partial_path(self.paths[key])
                    self._dsts[key] = rasterio.open(
                        self._partials[key], 'w',
                        **self._profile(stack, dtype, nodata, block_size))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _profile(stack: RasterStack, dtype: str, nodata: float,
                 block_size: int) -> dict:
        prof = stack.profile(count=1, dtype=dtype, nodata=nodata,
                             compress='deflate', BIGTIFF='IF_SAFER')
        # GTiff needs blocks no larger than the raster
        if stack.height >= block_size and stack.width >= block_size:
            prof.update(tiled=True, blockxsize=block_size,
                        blockysize=block_size)
        return prof

    def write(self, window: Window, logits: np.ndarray,
              invalid: np.ndarray) -> None:
        """Write merged ``(K, h, w)`` logits of ``window`` to every output."""
        conf_dst = self._dsts.get('confidence')
        ent_dst = self._dsts.get('entropy')
        if logits.shape[0] == 1:  # one-logit binary head: sigmoid + threshold
            p = 1.0 / (1.0 + np.exp(-logits[0]))
            cls = (p > self.threshold).astype(np.uint8)
            probs = np.stack([1 - p, p])
        else:
            cls = logits.argmax(axis=0).astype(np.uint8)
            want = conf_dst is not None or ent_dst is not None
            probs = softmax(logits) if want else None
        cls[invalid] = CLASS_NODATA
        self._dsts['classes'].write(cls, 1, window=window)
        if conf_dst is not None:
            conf = probs.max(axis=0)
            conf[invalid] = np.nan
            conf_dst.write(conf, 1, window=window)
        if ent_dst is not None:
            ent = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=0)
            ent[invalid] = np.nan
            ent_dst.write(ent.astype(np.float32), 1, window=window)

    def commit(self) -> Dict[str, Optional[str]]:
        """Close the files and move them onto their final names."""
        for dst in self._dsts.values():
            dst.close()
        self._dsts = {}
        for key, tmp in self._partials.items():
            commit(tmp, self.paths[key], sync=False)
        self._partials = {}
        self.committed = True
        return dict(self.paths)

    def close(self) -> None:
        """Close the files; without a :meth:`commit`, delete them."""
        for dst in self._dsts.values():
            dst.close()
        self._dsts = {}
        for tmp in self._partials.values():
            discard(tmp)
        self._partials = {}

    def __enter__(self) -> 'SceneOutputs':
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.close()


class HaloSpill:
    """FIFO of arrays in a temporary file (the halo passed between bands)."""

    def __init__(self, path: str):
        self.path = path
        self._w = open(path, 'wb')
        self._r = None

    def put(self, *arrays: np.ndarray) -> None:
        for a in arrays:
            np.ascontiguousarray(a).tofile(self._w)

    def rewind(self) -> None:
        """Switch from writing to reading from the start."""
        self._w.close()
        self._r = open(self.path, 'rb')

    def get(self, shape: Sequence[int], dtype) -> np.ndarray:
        count = int(np.prod(shape))
        out = np.fromfile(self._r, dtype=dtype, count=count)
        if out.size != count:
            raise RuntimeError(f'spill file {self.path} ended early')
        return out.reshape(shape)

    def close(self) -> None:
        for f in (self._w, self._r):
            if f is not None:
                f.close()
        os.remove(self.path)


class BandAccumulator:
    """Rolling accumulator of column band ``j`` (see the module docstring).

    ``spill_in`` holds the halo that band ``j - 1`` put into this band's
    columns, ``spill_out`` receives this band's halo into band ``j + 1``.
    """

    def __init__(self, grid: WindowGrid, j: int, outputs: SceneOutputs,
                 spill_in: Optional[HaloSpill] = None,
                 spill_out: Optional[HaloSpill] = None):
        self.grid, self.outputs = grid, outputs
        self.x0, self.x1, self.ext = grid.band_span(j)
        self.th = grid.tile_h
        self.spill_in, self.spill_out = spill_in, spill_out
        self.base = 0  # scene row of the accumulator's first row
        self.acc = None  # (K, th, ext) logit sums, K known at the first add
        self.cnt = np.zeros((self.th, self.ext), np.float32)
        self.invalid = np.zeros((self.th, self.ext), bool)

    def merge(self, predictions: Iterable[WindowLogits],
              on_window: Optional[Callable[[], object]] = None
              ) -> Optional[int]:
        """Add the band's window logits (in :meth:`WindowGrid.band_windows`
        order), writing each row as soon as no later window reaches it.

        Returns the class count of the logits (None if the band owns no
        window).
        """
        grid = self.grid
        preds = iter(predictions)
        num_classes = None
        pending = next(preds, None)
        for i in range(len(grid.rows)):
            self.finalize(grid.row_bounds[i][0])
            while pending is not None and pending[0][0] == i:
                (_, k), logits, invalid = pending
                num_classes = logits.shape[0]
                self.add(logits, invalid, i, k)
                if on_window is not None:
                    on_window()
                pending = next(preds, None)
        self.finalize(grid.height)
        return num_classes

    def add(self, logits: np.ndarray, invalid: np.ndarray, i: int,
            k: int) -> None:
        """Add the logits ``(K, h, w)`` and invalid mask of window (i, k)."""
        grid = self.grid
        r0, c0 = grid.rows[i], grid.cols[k]
        rbound, cbound = grid.row_bounds[i], grid.col_bounds[k]
        if self.acc is None:
            self.acc = np.zeros((logits.shape[0], self.th, self.ext),
                                np.float32)
        ra, rz = rbound[0] - r0, rbound[1] - r0  # window-local rows
        ca, cz = cbound[0] - c0, cbound[1] - c0
        ya, yz = rbound[0] - self.base, rbound[1] - self.base
        xa, xz = cbound[0] - self.x0, cbound[1] - self.x0
        self.acc[:, ya:yz, xa:xz] += logits[:, ra:rz, ca:cz]
        self.cnt[ya:yz, xa:xz] += 1
        self.invalid[ya:yz, xa:xz] = invalid[ra:rz, ca:cz]

    def finalize(self, upto: int) -> None:
        """Write rows ``[base, upto)``: no later window reaches them."""
        n = upto - self.base
        if n <= 0:
            return
        own = self.x1 - self.x0
        cnt, inv = self.cnt[:n], self.invalid[:n]
        acc = self.acc[:, :n] if self.acc is not None else None
        if self.spill_in is not None:
            acc = self._add_halo_in(acc, cnt, inv, n)
        if self.spill_out is not None:
            self._put_halo_out(acc, cnt, inv, own)
        self._write(acc, cnt, inv, n, own)
        self._roll(n)
        self.base = upto

    def _add_halo_in(self, acc, cnt, inv, n):
        k = self.spill_in.get((1,), np.int64)[0]
        hw = self.spill_in.get((1,), np.int64)[0]
        if k:
            h_acc = self.spill_in.get((k, n, hw), np.float32)
            if acc is None:
                self.acc = np.zeros((k, self.th, self.ext), np.float32)
                acc = self.acc[:, :n]
            acc[:, :, :hw] += h_acc
        cnt[:, :hw] += self.spill_in.get((n, hw), np.float32)
        inv[:, :hw] |= self.spill_in.get((n, hw), bool)
        return acc

    def _put_halo_out(self, acc, cnt, inv, own):
        k = 0 if acc is None else acc.shape[0]
        self.spill_out.put(np.array([k, self.ext - own], np.int64))
        if k:
            self.spill_out.put(acc[:, :, own:])
        self.spill_out.put(cnt[:, own:], inv[:, own:])

    def _roll(self, n):
        """Move the accumulator up by ``n`` rows, zeroing the freed rows."""
        keep = self.th - n
        bufs = [self.cnt[None], self.invalid[None]]
        if self.acc is not None:
            bufs.append(self.acc)
        for buf in bufs:
            buf[:, :keep] = buf[:, n:].copy()
            buf[:, keep:] = 0

    def _write(self, acc, cnt, inv, n, own):
        win = Window(self.x0, self.base, own, n)
        cnt, inv = cnt[:, :own], inv[:, :own]
        if acc is None or (cnt == 0).any():
            raise RuntimeError(f'rows {self.base}..{self.base + n} of columns '
                               f'{self.x0}..{self.x1} got no prediction')
        self.outputs.write(win, acc[:, :, :own] / cnt, inv)


def write_quicklook(class_map, png_path, palette=None, num_classes=None,
                    max_size: int = 2048) -> str:
    """Colour PNG of a class-map GeoTIFF, read decimated (nodata black)."""
    from PIL import Image

    with rasterio.open(class_map) as src:
        scale = max(src.width, src.height) / max_size
        scale = max(scale, 1.0)
        h = max(1, int(round(src.height / scale)))
        w = max(1, int(round(src.width / scale)))
        cls = src.read(1, out_shape=(h, w),
                       resampling=rasterio.enums.Resampling.nearest)
    n = int(num_classes or (cls[cls != CLASS_NODATA].max(initial=0) + 1))
    palette = list(palette) if palette is not None else default_palette(n)
    if len(palette) < n:
        raise ValueError(f'palette has {len(palette)} colours for {n} classes')
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)[:256]
    lut[CLASS_NODATA] = 0
    Path(png_path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(png_path) as tmp:
        Image.fromarray(lut[cls]).save(tmp, format='PNG')
    return os.fspath(png_path)
