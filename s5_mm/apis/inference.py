"""Tiled inference of a segmentor on large scenes, into georeferenced GeoTIFFs.

The scene is read window by window (never whole) on a reader thread while
the model runs; the window logits are merged and written column band by
column band by :mod:`s5_mm.geo.scene_writer` (merge modes and memory bounds
are described there). GDAL's block cache is capped (``gdal_cache_mb``).
"""
from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import rasterio
import torch
from mmseg.structures import SegDataSample

from s5_mm.geo.raster_stack import RasterStack
from s5_mm.geo.scene_writer import (MERGE_MODES, BandAccumulator, HaloSpill,
                                    SceneOutputs, WindowGrid, WindowLogits,
                                    write_quicklook)


@dataclass(frozen=True)
class SceneInferenceOptions:
    """How :func:`infer_scene` cuts, predicts and writes a scene."""
    tile_size: int
    stride: int
    batch_size: int = 4
    merge: str = 'average'
    dataset_name: Optional[str] = None
    write_confidence: bool = False
    write_entropy: bool = False
    progress: bool = True
    chunk_width: Optional[int] = None
    autocast_dtype: Optional[torch.dtype] = None
    block_size: int = 256

    def __post_init__(self):
        if self.merge not in MERGE_MODES:
            raise ValueError(f'merge must be one of {MERGE_MODES}, '
                             f'got {self.merge!r}')
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {self.batch_size}')
        if not 0 < self.stride <= self.tile_size:
            raise ValueError(f'need 0 < stride <= tile_size, got '
                             f'stride={self.stride}, '
                             f'tile_size={self.tile_size}')


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
            nodata or non-finite; tiled, deflate-compressed, source CRS and
            transform). Outputs are written under temporary names and
            renamed when complete: a failed run leaves earlier files alone.
        tile_size / stride: window size and step (``stride <= tile_size``).
        batch_size: windows per forward pass.
        bands: 1-based bands of a multi-band scene to use, in order.
        merge: ``'average'`` or ``'center'`` (:mod:`s5_mm.geo.scene_writer`).
        dataset_name: head of a multi-dataset model (sample metainfo).
        write_confidence / write_entropy: also write ``<stem>_confidence.tif``
            (max softmax probability) / ``<stem>_entropy.tif`` (softmax
            entropy in nats) beside ``out_path``; float32, nodata NaN.
        quicklook_png: path of a colour PNG of the class map, downsampled to
            at most ``quicklook_max_size`` pixels a side (nodata black).
        palette: RGB per class for the quick-look; default the model's
            ``dataset_meta['palette']`` or
            :func:`~s5_mm.geo.scene_writer.default_palette`.
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
    opts = SceneInferenceOptions(
        tile_size=tile_size, stride=stride, batch_size=batch_size,
        merge=merge, dataset_name=dataset_name,
        write_confidence=write_confidence, write_entropy=write_entropy,
        progress=progress, chunk_width=chunk_width,
        autocast_dtype=autocast_dtype, block_size=block_size)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with rasterio.Env(GDAL_CACHEMAX=int(gdal_cache_mb) * 2**20), \
                torch.no_grad(), RasterStack(scene, bands, nodata) as stack:
            _check_band_count(model, stack)
            # a truncated or corrupt input fails here, before any output
            # exists (outputs are written under temporary names anyway)
            stack.probe()
            result = predict_scene(model, stack, out_path, opts)
            result['quicklook'] = None
            if quicklook_png is not None:
                result['quicklook'] = write_quicklook(
                    result['classes'], quicklook_png,
                    palette if palette is not None else _palette(model),
                    result['num_classes'], quicklook_max_size)
    finally:
        model.train(was_training)
    return result


def _check_band_count(model, stack: RasterStack) -> None:
    mean = getattr(model.data_preprocessor, 'mean', None)
    if mean is not None and mean.numel() != stack.count:
        raise ValueError(f'the model normalises {mean.numel()} bands '
                         f'(data_preprocessor mean) but {stack.abs_paths} '
                         f'gives {stack.count}; select bands with `bands`')


def _palette(model) -> Optional[list]:
    return (getattr(model, 'dataset_meta', None) or {}).get('palette')


def _binary_threshold(model) -> Optional[float]:
    """The decode head's threshold for a one-logit head (MMSeg's)."""
    return getattr(getattr(model, 'decode_head', None), 'threshold', None)


def predict_scene(model, stack: RasterStack, out_path: Path,
                  opts: SceneInferenceOptions) -> Dict[str, object]:
    """Predict every window of an open scene and write the output GeoTIFFs.

    Returns the output paths (``classes``, ``confidence``, ``entropy``),
    ``num_windows`` and ``num_classes``.
    """
    from tqdm import tqdm

    grid = WindowGrid.build(stack.height, stack.width, opts.tile_size,
                            opts.stride, opts.merge, opts.chunk_width,
                            opts.block_size)
    num_classes = None
    # exits in reverse: bar, reader thread, outputs, then the spill files
    with tempfile.TemporaryDirectory(prefix='s5_infer_') as tmp, \
            SceneOutputs(stack, out_path,
                         write_confidence=opts.write_confidence,
                         write_entropy=opts.write_entropy,
                         block_size=opts.block_size,
                         threshold=_binary_threshold(model)) as outputs, \
            ThreadPoolExecutor(max_workers=1) as reader, \
            tqdm(total=grid.num_windows, disable=not opts.progress,
                 desc=f'{Path(stack.paths[0]).name}', unit='win') as bar:
        spill_in = None
        for j in range(grid.num_bands):
            spill_out = (HaloSpill(os.path.join(tmp, f'band{j}.bin'))
                         if j + 1 < grid.num_bands else None)
            band = BandAccumulator(grid, j, outputs, spill_in, spill_out)
            preds = _predict_windows(model, stack, reader, grid,
                                     grid.band_windows(j), opts)
            band_classes = band.merge(preds, on_window=bar.update)
            if band_classes is not None:  # None: the band owns no window
                num_classes = band_classes
            if spill_in is not None:
                spill_in.close()
            if spill_out is not None:
                spill_out.rewind()
            spill_in = spill_out
        paths = dict(outputs.paths)
    return dict(paths, num_windows=grid.num_windows, num_classes=num_classes)


def _read_windows(stack: RasterStack, grid: WindowGrid,
                  chunk: List[Tuple[int, int]]):
    """Raw windows ``(N, C, h, w)`` (nodata set to 0, as
    ``LoadGeoImageFromFile``) and their invalid masks (any band nodata)."""
    datas, invalids = [], []
    for i, k in chunk:
        data, inv = stack.read(grid.window(i, k), dtype=np.float32)
        data[inv] = 0
        datas.append(data)
        invalids.append(inv.any(axis=0))
    return np.stack(datas), invalids


def _predict_windows(model, stack: RasterStack, reader: ThreadPoolExecutor,
                     grid: WindowGrid, windows: List[Tuple[int, int]],
                     opts: SceneInferenceOptions) -> Iterator[WindowLogits]:
    """Yield ``((i, k), logits (K,h,w), invalid (h,w))`` in window order.

    The next batch is read on the reader thread while the model runs.
    """
    chunks = [windows[s:s + opts.batch_size]
              for s in range(0, len(windows), opts.batch_size)]
    fut = reader.submit(_read_windows, stack, grid, chunks[0]) \
        if chunks else None
    for c, chunk in enumerate(chunks):
        batch, invalids = fut.result()
        if c + 1 < len(chunks):
            fut = reader.submit(_read_windows, stack, grid, chunks[c + 1])
        logits = window_logits(model, batch, opts.dataset_name,
                               opts.autocast_dtype)
        yield from zip(chunk, logits, invalids)
