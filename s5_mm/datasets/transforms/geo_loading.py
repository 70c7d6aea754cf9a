"""Loading transforms for GeoTIFF and other rasterio-readable scenes.

``LoadGeoImageFromFile`` keeps bands in file order (no BGR swap): configs that
use it set ``bgr_to_rgb=False`` in the data preprocessor and give one
mean/std per band there (``MultiBandSegDataPreProcessor`` for other than 1 or
3 bands; ``tools/band_stats.py`` prints the values). See :mod:`s5_mm.geo` for
adapting a 3-band checkpoint to N bands.

Non-finite pixels (NaN, inf) are nodata in both (see
:class:`~s5_mm.geo.raster_stack.RasterStack`): masked in ``valid_mask`` and
ignored in the labels, so they count in neither the loss nor the metric.

Both transforms read only ``results['geo_window']`` when present (a rasterio
``Window`` or ``(col_off, row_off, width, height)``), so a dataset can sample
crops of a large scene without reading all of it; outside the raster counts
as nodata.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import rasterio
from mmcv.transforms import BaseTransform
from rasterio.windows import Window

from s5_mm.datasets.transforms.label_check import (CheckLabelRange,
                                                  insert_label_check)
from s5_mm.geo.raster_stack import RasterStack
from s5_mm.registry import TRANSFORMS

OUT_OF_RANGE_MODES = ('error', 'ignore')


def _window(results) -> Optional[Window]:
    win = results.get('geo_window')
    if win is None or isinstance(win, Window):
        return win
    return Window(*[int(v) for v in win])


@TRANSFORMS.register_module()
class LoadGeoImageFromFile(BaseTransform):
    """Load a raster (or a stack of single-band files) as an HxWxC image.

    Required keys: ``img_path`` (a path, or a list of one file per band).
    Added keys: ``img`` (HxWxC, float32 unless ``to_float32=False``, nodata
    pixels set to 0), ``img_shape``, ``ori_shape``, ``valid_mask`` (HxW bool,
    see ``valid_mask`` below), ``geo_crs`` (WKT, None if untagged),
    ``geo_transform`` (affine coefficients ``(a, b, c, d, e, f)`` as in
    ``tuple(rasterio_transform)[:6]``; ``Affine(*t)`` rebuilds it; already
    shifted to ``geo_window``), ``nodata`` (per band, None where undefined).

    Where ``valid_mask`` is False, ``LoadGeoAnnotations`` ignores the labels
    and ``AddPaddingMask`` the pixels of unlabelled images. Geometric
    transforms after this loader must keep ``geo_transform`` right: use
    those of :mod:`s5_mm.datasets.transforms.geometric` (``GeoRandomCrop``,
    ``GeoRandomFlip``, ``RandomRescale``, ``RandomRot90``, ``CropWindow``),
    not MMSeg's ``RandomCrop`` / ``RandomFlip``.

    Args:
        bands: 1-based band indexes to select/reorder (one multi-band file).
        to_float32: convert to float32; otherwise keep the bands' common dtype.
        nodata: override the files' nodata value.
        expected_bands: raise if the number of bands read differs.
        valid_mask: ``'any'``: a pixel is invalid when any band is nodata
            there (the default); ``'all'``: only when every band is (pixels
            where some bands are nodata then keep their label, with 0 in
            those bands).
    """

    VALID_MASK_MODES = ('any', 'all')

    def __init__(self, bands: Optional[Sequence[int]] = None,
                 to_float32: bool = True, nodata: Optional[float] = None,
                 expected_bands: Optional[int] = None,
                 valid_mask: str = 'any'):
        if valid_mask not in self.VALID_MASK_MODES:
            raise ValueError(f'valid_mask must be one of '
                             f'{self.VALID_MASK_MODES}, got {valid_mask!r}')
        self.bands = list(bands) if bands is not None else None
        self.to_float32 = to_float32
        self.nodata = nodata
        self.expected_bands = expected_bands
        self.valid_mask = valid_mask

    def transform(self, results: dict) -> dict:
        src = results['img_path']
        window = _window(results)
        with RasterStack(src, bands=self.bands, nodata=self.nodata) as stack:
            if (self.expected_bands is not None
                    and stack.count != self.expected_bands):
                raise ValueError(f'expected {self.expected_bands} bands, got '
                                 f'{stack.count} from {stack.abs_paths}')
            dtype = np.float32 if self.to_float32 else stack.dtype
            data, invalid = stack.read(window, boundless=window is not None,
                                       dtype=dtype)
            transform = stack.transform
            if window is not None:
                transform = transform @ rasterio.Affine.translation(
                    window.col_off, window.row_off)
            crs = stack.crs.to_wkt() if stack.crs else None
            nodata = stack.band_nodata
        data[invalid] = 0
        img = np.ascontiguousarray(data.transpose(1, 2, 0))
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        invalid_px = (invalid.any(axis=0) if self.valid_mask == 'any' else
                      invalid.all(axis=0))
        results['valid_mask'] = ~invalid_px
        results['geo_crs'] = crs
        results['geo_transform'] = tuple(transform)[:6]
        results['nodata'] = nodata
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(bands={self.bands}, '
                f'to_float32={self.to_float32}, nodata={self.nodata}, '
                f'expected_bands={self.expected_bands}, '
                f'valid_mask={self.valid_mask!r})')


@TRANSFORMS.register_module()
class LoadGeoAnnotations(BaseTransform):
    """Load a label raster as ``gt_seg_map`` (uint8 HxW).

    Label = raw value + ``label_offset`` (e.g. -1 maps classes 1..K to
    0..K-1). Set to ``ignore_index``: the raster's nodata, negative labels
    after the offset (an "unlabelled" 0 with offset -1), and pixels where
    ``results['valid_mask']`` is False. Then, as MMSeg's ``LoadAnnotations``,
    ``reduce_zero_label`` and ``label_map`` from ``results`` apply.

    Labels at or beyond ``num_classes`` (outside ``ignore_index``) raise
    naming the file and the values found (``CheckLabelRange``), or with
    ``out_of_range='ignore'`` become ``ignore_index``. A dataset sets
    ``num_classes`` from its class list (:func:`set_label_range`).

    Args:
        label_offset: integer added to the raw labels.
        ignore_index: value for ignored pixels.
        nodata: override the label raster's nodata value.
        num_classes: class count for the range check (None: no check here).
        out_of_range: ``'error'`` or ``'ignore'``.
        optional: a sample without ``seg_map_path`` passes unchanged (no
            label), as image-only inference needs: ``mmseg.apis.
            inference_model`` runs the config's ``test_pipeline`` on
            ``dict(img_path=...)`` and removes only MMSeg's own
            ``LoadAnnotations``. Default False: a missing ``seg_map_path``
            raises (a dataset without its label folder).
    """

    def __init__(self, label_offset: int = 0, ignore_index: int = 255,
                 nodata: Optional[float] = None,
                 num_classes: Optional[int] = None,
                 out_of_range: str = 'error',
                 optional: bool = False):
        if out_of_range not in OUT_OF_RANGE_MODES:
            raise ValueError(f'out_of_range must be one of '
                             f'{OUT_OF_RANGE_MODES}, got {out_of_range!r}')
        self.label_offset = int(label_offset)
        self.ignore_index = int(ignore_index)
        self.nodata = nodata
        self.num_classes = None if num_classes is None else int(num_classes)
        self.out_of_range = out_of_range
        self.optional = bool(optional)

    def transform(self, results: dict) -> dict:
        path = results.get('seg_map_path')
        if path is None:
            if self.optional:
                return results
            raise KeyError(
                f"LoadGeoAnnotations: no 'seg_map_path' for image "
                f"{results.get('img_path')} (the dataset's label folder, "
                "data_prefix.seg_map_path); for image-only inference set "
                'LoadGeoAnnotations(optional=True)')
        window = _window(results)
        with RasterStack(path, nodata=self.nodata) as stack:
            if stack.count != 1:
                raise ValueError(f'label raster {os.path.abspath(path)} has '
                                 f'{stack.count} bands, expected 1')
            raw, invalid = stack.read(window, boundless=window is not None)
        raw, invalid = raw[0], invalid[0]
        img_shape = results.get('ori_shape', results.get('img_shape'))
        if img_shape is not None and tuple(raw.shape) != tuple(img_shape[:2]):
            raise ValueError(
                f'label raster {os.path.abspath(path)} is {raw.shape[1]}x'
                f'{raw.shape[0]} (WxH) but image {results.get("img_path")} is '
                f'{img_shape[1]}x{img_shape[0]}')
        vals = raw[~invalid]
        if vals.dtype.kind == 'f':
            if not np.isfinite(vals).all() or (vals != np.round(vals)).any():
                raise ValueError(f'label raster {os.path.abspath(path)} '
                                 'holds non-integer values outside its '
                                 'nodata')
        labels = raw.astype(np.int64) + self.label_offset
        ignore = invalid | (labels < 0)
        if 'valid_mask' in results:
            ignore |= ~results['valid_mask']
        too_big = labels[~ignore] > 255
        if too_big.any():
            raise ValueError(f'label raster {os.path.abspath(path)} has '
                             f'labels > 255 after offset {self.label_offset}')
        labels[ignore] = self.ignore_index
        gt = labels.astype(np.uint8)
        if results.get('reduce_zero_label', False):
            gt[gt == 0] = 255
            gt = gt - 1
            gt[gt == 254] = 255
        label_map = results.get('label_map')
        if label_map:
            src = gt.copy()
            for old_id, new_id in label_map.items():
                gt[src == old_id] = new_id
        results['gt_seg_map'] = gt
        results.setdefault('seg_fields', []).append('gt_seg_map')
        if self.num_classes is not None:
            self._check_range(results)
        return results

    def _check_range(self, results: dict) -> None:
        gt = results['gt_seg_map']
        if self.out_of_range == 'ignore':
            gt[(gt >= self.num_classes) & (gt != self.ignore_index)] = \
                self.ignore_index
            return
        try:
            CheckLabelRange(self.num_classes, self.ignore_index)(results)
        except ValueError as e:
            raise ValueError(
                f"{e}; label_offset={self.label_offset}; "
                "LoadGeoAnnotations(out_of_range='ignore') maps such labels "
                'to ignore_index. Label raster: '
                f'{os.path.abspath(results["seg_map_path"])}') from None

    def __repr__(self):
        return (f'{self.__class__.__name__}(label_offset={self.label_offset}, '
                f'ignore_index={self.ignore_index}, nodata={self.nodata}, '
                f'num_classes={self.num_classes}, '
                f'out_of_range={self.out_of_range!r}, '
                f'optional={self.optional})')


def _walk_transforms(pipeline):
    """Every transform of a built pipeline, nested ones (``Compose``,
    ``TestTimeAug``) included."""
    for t in getattr(pipeline, 'transforms', None) or []:
        yield t
        yield from _walk_transforms(t)
    for sub in getattr(pipeline, 'subroutines', None) or []:
        yield from _walk_transforms(sub)


def set_label_range(pipeline, num_classes: int,
                    ignore_index: int = 255) -> None:
    """Give every ``LoadGeoAnnotations`` of ``pipeline`` without a class
    count ``num_classes``; a pipeline without one gets ``CheckLabelRange``
    after its annotation loader."""
    loaders = [t for t in _walk_transforms(pipeline)
               if isinstance(t, LoadGeoAnnotations)]
    for t in loaders:
        if t.num_classes is None:
            t.num_classes = int(num_classes)
    if not loaders:
        insert_label_check(pipeline, num_classes, ignore_index)
