"""Tiled inference on large scenes, written as georeferenced GeoTIFFs.

The scene is read window by window (never whole). Windows follow MMSeg's
slide-inference grid (step ``stride``, last window moved back inside the
scene). Logits of overlapping windows are averaged (``merge='average'``, as
MMSeg's ``slide_inference``) or each pixel takes the logits of the window
whose centre part holds it (``merge='center'``: overlaps are split at their
midpoints, so with ``(tile_size - stride) / 2`` at least the model's
receptive-field radius the result equals whole-image inference).

Memory does not grow with the scene: columns are processed in bands of
``chunk_width`` pixels; within a band a ``tile_size``-row accumulator rolls
down the scene and finished rows are written out. Logits that windows of one
band put into the next band (at most ``tile_size`` columns) are spilled to a
temporary file and read back, in the same row order, by the next band. GDAL's
block cache is capped (``gdal_cache_mb``).
"""
from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import rasterio
import torch
from mmseg.structures import SegDataSample
from rasterio.windows import Window

from .raster_stack import RasterStack
from .windows import center_bounds, window_offsets

CLASS_NODATA = 255
MERGE_MODES = ('average', 'center')


def default_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """Distinct colours, fixed for a given class count."""
    rng = np.random.RandomState(12345)
    return [tuple(int(v) for v in rng.randint(0, 256, 3))
            for _ in range(num_classes)]


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device('cpu')


def window_logits(model, batch: np.ndarray, dataset_name: Optional[str] = None,
                  autocast_dtype: Optional[torch.dtype] = None) -> np.ndarray:
    """Logits ``(N, K, h, w)`` (float32 numpy) of raw windows ``(N, C, h, w)``.

    Normalisation is the model's ``data_preprocessor`` (as at test time);
    ``dataset_name`` goes into every sample's metainfo, where a multi-dataset
    segmentor picks its head (``encode_decode`` receives the metainfos).
    """
    n, _, h, w = batch.shape
    samples = []
    for _ in range(n):
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))
        if dataset_name is not None:
            meta['dataset_name'] = dataset_name
        samples.append(SegDataSample(metainfo=meta))
    data = dict(inputs=[torch.from_numpy(b) for b in batch],
                data_samples=samples)
    data = model.data_preprocessor(data, False)
    inputs, samples = data['inputs'], data['data_samples']
    ph, pw = inputs.shape[-2:]
    # A test_cfg size_divisor pads right/bottom: predict at the padded size.
    metas = []
    for s in samples:
        meta = dict(s.metainfo)
        meta.update(img_shape=(ph, pw), pad_shape=(ph, pw))
        metas.append(meta)
    dev = inputs.device
    if autocast_dtype is not None:
        with torch.autocast(device_type=dev.type, dtype=autocast_dtype):
            logits = model.encode_decode(inputs, metas)
    else:
        logits = model.encode_decode(inputs, metas)
    return logits[..., :h, :w].float().cpu().numpy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return z


class _Spill:
    """FIFO of arrays in a temporary file (the halo passed between bands)."""

    def __init__(self, path: str):
        self.path = path
        self._w = open(path, 'wb')
        self._r = None

    def put(self, *arrays):
        for a in arrays:
            np.ascontiguousarray(a).tofile(self._w)

    def rewind(self):
        self._w.close()
        self._r = open(self.path, 'rb')

    def get(self, shape, dtype) -> np.ndarray:
        count = int(np.prod(shape))
        out = np.fromfile(self._r, dtype=dtype, count=count)
        if out.size != count:
            raise RuntimeError(f'spill file {self.path} ended early')
        return out.reshape(shape)

    def close(self):
        for f in (self._w, self._r):
            if f is not None:
                f.close()
        os.remove(self.path)


def _sibling(out_path: Path, suffix: str) -> str:
    return os.fspath(out_path.with_name(f'{out_path.stem}_{suffix}.tif'))


def infer_scene(model, scene, out_path, *, tile_size: int, stride: int,
                batch_size: int = 4, bands: Optional[Sequence[int]] = None,
                merge: str = 'average', dataset_name: Optional[str] = None,
                write_confidence: bool = False, write_entropy: bool = False,
                quicklook_png=None, palette=None, progress: bool = True,
                nodata: Optional[float] = None,
                chunk_width: Optional[int] = None,
                autocast_dtype: Optional[torch.dtype] = None,
                gdal_cache_mb: int = 64, quicklook_max_size: int = 2048,
                block_size: int = 256) -> Dict[str, object]:
    """Predict a scene window by window and write a class-map GeoTIFF.

    Args:
        model: an MMSeg segmentor (``data_preprocessor`` + ``encode_decode``),
            in eval mode on its device.
        scene: a raster path, or a list of single-band files (one per band).
        out_path: class map (uint8, nodata 255 where any input band is
            nodata; tiled, deflate-compressed, source CRS and transform).
        tile_size / stride: window size and step (``stride <= tile_size``).
        batch_size: windows per forward pass.
        bands: 1-based bands of a multi-band scene to use, in order.
        merge: ``'average'`` or ``'center'`` (module docstring).
        dataset_name: head of a multi-dataset model (sample metainfo).
        write_confidence / write_entropy: also write ``<stem>_confidence.tif``
            (max softmax probability) / ``<stem>_entropy.tif`` (softmax
            entropy in nats) beside ``out_path``; float32, nodata NaN.
        quicklook_png: path of a colour PNG of the class map, downsampled to
            at most ``quicklook_max_size`` pixels a side (nodata black).
        palette: RGB per class for the quick-look; default the model's
            ``dataset_meta['palette']`` or :func:`default_palette`.
        progress: show a progress bar.
        nodata: override the scene's nodata value.
        chunk_width: column band width (rounded up to ``block_size``, at
            least ``tile_size``); bounds memory, default 2048.
        autocast_dtype: e.g. ``torch.bfloat16`` to run the model in autocast.
        gdal_cache_mb: GDAL block cache cap while reading and writing.
        block_size: GeoTIFF tile size of the outputs.

    Returns a dict: ``classes``, ``confidence``, ``entropy``, ``quicklook``
    (paths or None), ``num_windows``, ``num_classes``.
    """
    if merge not in MERGE_MODES:
        raise ValueError(f'merge must be one of {MERGE_MODES}, got {merge!r}')
    if not 0 < stride <= tile_size:
        raise ValueError(f'need 0 < stride <= tile_size, got stride={stride}, '
                         f'tile_size={tile_size}')
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb) * 2**20), \
                torch.no_grad(), RasterStack(scene, bands, nodata) as stack:
            result = _run(model, stack, out_path, tile_size, stride,
                          batch_size, merge, dataset_name, write_confidence,
                          write_entropy, progress, chunk_width, autocast_dtype,
                          block_size)
            if quicklook_png is not None:
                if palette is None:
                    palette = (getattr(model, 'dataset_meta', None)
                               or {}).get('palette')
                result['quicklook'] = write_quicklook(
                    result['classes'], quicklook_png, palette,
                    result['num_classes'], quicklook_max_size)
            else:
                result['quicklook'] = None
    finally:
        model.train(was_training)
    return result


def _run(model, stack, out_path, tile, stride, batch_size, merge,
         dataset_name, write_conf, write_ent, progress, chunk_width,
         autocast_dtype, block_size):
    from tqdm import tqdm

    mean = getattr(model.data_preprocessor, 'mean', None)
    if mean is not None and mean.numel() != stack.count:
        raise ValueError(f'the model normalises {mean.numel()} bands '
                         f'(data_preprocessor mean) but {stack.paths} gives '
                         f'{stack.count}; select bands with `bands`')
    H, W = stack.height, stack.width
    th, tw = min(tile, H), min(tile, W)
    rows = window_offsets(H, tile, stride, 'shift')
    cols = window_offsets(W, tile, stride, 'shift')
    if merge == 'center':
        rb, cb = center_bounds(rows, th, H), center_bounds(cols, tw, W)
    else:
        rb = [(o, o + th) for o in rows]
        cb = [(o, o + tw) for o in cols]
    B = max(chunk_width or 2048, tw)
    B = -(-B // block_size) * block_size
    n_bands = -(-W // B)
    owned = [[k for k in range(len(cols)) if j * B <= cb[k][0] < (j + 1) * B]
             for j in range(n_bands)]
    n_windows = len(rows) * len(cols)

    def out_profile(dtype, nodata):
        prof = stack.profile(count=1, dtype=dtype, nodata=nodata,
                             compress='deflate', BIGTIFF='IF_SAFER')
        if H >= block_size and W >= block_size:  # GTiff needs blocks <= size
            prof.update(tiled=True, blockxsize=block_size,
                        blockysize=block_size)
        return prof

    outs = {
        'classes': os.fspath(out_path),
        'confidence': _sibling(out_path, 'confidence') if write_conf else None,
        'entropy': _sibling(out_path, 'entropy') if write_ent else None
    }
    dst_cls = rasterio.open(outs['classes'], 'w',
                            **out_profile('uint8', CLASS_NODATA))
    dst_conf = (rasterio.open(outs['confidence'], 'w',
                              **out_profile('float32', float('nan')))
                if write_conf else None)
    dst_ent = (rasterio.open(outs['entropy'], 'w',
                             **out_profile('float32', float('nan')))
               if write_ent else None)
    tmpdir = tempfile.TemporaryDirectory(prefix='s5_infer_')
    bar = tqdm(total=n_windows, disable=not progress,
               desc=f'{Path(stack.paths[0]).name}', unit='win')
    reader = ThreadPoolExecutor(max_workers=1)  # the only thread reading
    state = dict(num_classes=None)
    threshold = getattr(getattr(model, 'decode_head', None), 'threshold', None)
    try:
        spill_in = None
        for j in range(n_bands):
            x0, x1 = j * B, min((j + 1) * B, W)
            ext = min(x1 + tw, W) - x0  # own columns + halo into band j+1
            spill_out = (_Spill(os.path.join(tmpdir.name, f'band{j}.bin'))
                         if j + 1 < n_bands else None)
            band = _Band(x0, x1, ext, th, H, spill_in, spill_out,
                         (dst_cls, dst_conf, dst_ent), threshold)
            windows = [(i, k) for i in range(len(rows)) for k in owned[j]]
            preds = _predict(model, stack, reader, windows, rows, cols, th, tw,
                             batch_size, dataset_name, autocast_dtype)
            pending = next(preds, None)
            for i in range(len(rows)):
                band.finalize(rb[i][0])
                while pending is not None and pending[0][0] == i:
                    (_, k), logits, invalid = pending
                    state['num_classes'] = logits.shape[0]
                    band.add(logits, invalid, rows[i], cols[k], rb[i], cb[k])
                    bar.update(1)
                    pending = next(preds, None)
            band.finalize(H)
            if spill_in is not None:
                spill_in.close()
            if spill_out is not None:
                spill_out.rewind()
            spill_in = spill_out
    finally:
        bar.close()
        reader.shutdown(wait=True)
        for d in (dst_cls, dst_conf, dst_ent):
            if d is not None:
                d.close()
        tmpdir.cleanup()
    outs.update(num_windows=n_windows, num_classes=state['num_classes'])
    return outs


def _predict(model, stack, reader, windows, rows, cols, th, tw, batch_size,
             dataset_name, autocast_dtype) -> Iterator:
    """Yield ``((i, k), logits (K,h,w), invalid (h,w))`` in window order.

    The next batch is read on the reader thread while the model runs.
    """
    def read(chunk):
        datas, invalids = [], []
        for i, k in chunk:
            data, inv = stack.read(Window(cols[k], rows[i], tw, th),
                                   dtype=np.float32)
            data[inv] = 0  # as LoadGeoImageFromFile
            datas.append(data)
            invalids.append(inv.any(axis=0))
        return np.stack(datas), invalids

    chunks = [windows[s:s + batch_size]
              for s in range(0, len(windows), batch_size)]
    fut = reader.submit(read, chunks[0]) if chunks else None
    for c, chunk in enumerate(chunks):
        batch, invalids = fut.result()
        if c + 1 < len(chunks):
            fut = reader.submit(read, chunks[c + 1])
        logits = window_logits(model, batch, dataset_name, autocast_dtype)
        for ik, lg, inv in zip(chunk, logits, invalids):
            yield ik, lg, inv


class _Band:
    """Rolling accumulator of one column band (see the module docstring)."""

    def __init__(self, x0, x1, ext, th, H, spill_in, spill_out, dsts,
                 threshold):
        self.x0, self.x1, self.ext, self.th, self.H = x0, x1, ext, th, H
        self.spill_in, self.spill_out = spill_in, spill_out
        self.dst_cls, self.dst_conf, self.dst_ent = dsts
        self.threshold = 0.5 if threshold is None else threshold
        self.base = 0
        self.acc = None
        self.cnt = np.zeros((th, ext), np.float32)
        self.invalid = np.zeros((th, ext), bool)
        self.halo_in = None  # width of the halo coming from the band before

    def add(self, logits, invalid, r0, c0, rbound, cbound):
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

    def finalize(self, upto: int):
        """Write rows ``[base, upto)``: no later window reaches them."""
        n = upto - self.base
        if n <= 0:
            return
        own = self.x1 - self.x0
        cnt, inv = self.cnt[:n], self.invalid[:n]
        acc = self.acc[:, :n] if self.acc is not None else None
        if self.spill_in is not None:
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
        if self.spill_out is not None:
            k = 0 if acc is None else acc.shape[0]
            self.spill_out.put(np.array([k, self.ext - own], np.int64))
            if k:
                self.spill_out.put(acc[:, :, own:])
            self.spill_out.put(cnt[:, own:], inv[:, own:])
        self._write(acc, cnt, inv, n, own)
        # roll the accumulator up by n rows
        keep = self.th - n
        bufs = [self.cnt[None], self.invalid[None]]
        if self.acc is not None:
            bufs.append(self.acc)
        for buf in bufs:
            buf[:, :keep] = buf[:, n:].copy()
            buf[:, keep:] = 0
        self.base = upto

    def _write(self, acc, cnt, inv, n, own):
        win = Window(self.x0, self.base, own, n)
        cnt, inv = cnt[:, :own], inv[:, :own]
        if acc is None or (cnt == 0).any():
            raise RuntimeError(f'rows {self.base}..{self.base + n} of columns '
                               f'{self.x0}..{self.x1} got no prediction')
        logits = acc[:, :, :own] / cnt
        if logits.shape[0] == 1:  # one-logit binary head: sigmoid + threshold
            p = 1.0 / (1.0 + np.exp(-logits[0]))
            cls = (p > self.threshold).astype(np.uint8)
            probs = np.stack([1 - p, p])
        else:
            cls = logits.argmax(axis=0).astype(np.uint8)
            want = self.dst_conf is not None or self.dst_ent is not None
            probs = _softmax(logits) if want else None
        cls[inv] = CLASS_NODATA
        self.dst_cls.write(cls, 1, window=win)
        if self.dst_conf is not None:
            conf = probs.max(axis=0)
            conf[inv] = np.nan
            self.dst_conf.write(conf, 1, window=win)
        if self.dst_ent is not None:
            ent = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=0)
            ent[inv] = np.nan
            self.dst_ent.write(ent.astype(np.float32), 1, window=win)


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
    Image.fromarray(lut[cls]).save(png_path)
    return os.fspath(png_path)
