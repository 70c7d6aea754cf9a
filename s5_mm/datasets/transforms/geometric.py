"""Geometric transforms that keep ``geo_transform`` right.

``LoadGeoImageFromFile`` stores the affine of the loaded array in
``results['geo_transform']`` (pixel corner ``(col, row)`` -> map ``(x, y)``,
coefficients ``(a, b, c, d, e, f)``). Every transform here composes it with
the pixel map it applied, so each output pixel keeps the map position of
the input pixel it came from. Crops, flips and 90-degree rotations keep the
pixel grid (its origin and axis order change: a flipped or rotated affine
has a negative or off-diagonal term, which rasterio handles); a rescale
changes the pixel size over the same extent. Without ``geo_transform``
(e.g. PNG inputs) they behave as usual.

MMSeg's ``RandomCrop`` and ``RandomFlip`` know nothing of
``geo_transform``: after a geo loader use ``GeoRandomCrop`` and
``GeoRandomFlip``, subclasses with the same arguments and the same random
draws that also update it.
"""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import RandomCrop as MMSegRandomCrop
from mmseg.datasets.transforms import RandomFlip as MMSegRandomFlip
from rasterio.transform import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from s5_mm.registry import TRANSFORMS


def _seg_keys(results: dict) -> set:
    """The segmentation maps a geometric transform must move too."""
    keys = set(results.get('seg_fields', []))
    if results.get('gt_seg_map') is not None:
        keys.add('gt_seg_map')
    return keys


def compose_geo_transform(results: dict, pixel_map: Affine) -> None:
    """Update ``results['geo_transform']`` (if any) after a pixel move.

    ``pixel_map`` takes output pixel corners ``(col, row)`` to the input
    pixel corners they came from.
    """
    t = results.get('geo_transform')
    if t is not None:
        results['geo_transform'] = tuple(Affine(*t) @ pixel_map)[:6]


def crop_geo_transform(results: dict, x0: int, y0: int, width: int,
                       height: int) -> None:
    """Update ``results['geo_transform']`` (if any) after cropping the
    window with top-left pixel ``(x0, y0)``, as rasterio's window
    transform."""
    t = results.get('geo_transform')
    if t is not None:
        win = Window(x0, y0, width, height)
        results['geo_transform'] = tuple(window_transform(win, Affine(*t)))[:6]


def flip_pixel_map(direction: str, height: int, width: int) -> Affine:
    """Pixel map of ``mmcv.imflip(img, direction)`` on a ``height x width``
    image."""
    maps = dict(horizontal=Affine(-1, 0, width, 0, 1, 0),
                vertical=Affine(1, 0, 0, 0, -1, height),
                diagonal=Affine(-1, 0, width, 0, -1, height))
    if direction not in maps:
        raise ValueError(f'unknown flip direction {direction!r}')
    return maps[direction]


def rot90_pixel_map(k: int, height: int, width: int) -> Affine:
    """Pixel map of ``np.rot90(img, k)`` on a ``height x width`` image.

    One turn: output ``[r, c]`` = input ``[c, w - 1 - r]``, i.e. corner
    ``(col, row)`` comes from ``(w - row, col)``.
    """
    m = Affine.identity()
    h, w = height, width
    for _ in range(k % 4):
        m = m @ Affine(0, -1, w, 1, 0, 0)
        h, w = w, h
    return m


@TRANSFORMS.register_module()
class CropWindow(BaseTransform):
    """Crop image and seg maps to ``results['crop_window']`` (x0, y0, x1, y1).

    Samples without a window pass unchanged. A window outside the image is an
    error naming the file (e.g. a patch smaller than the dataset's
    ``patch_size``).
    """

    def __init__(self, key: str = 'crop_window'):
        self.key = key

    def transform(self, results: dict) -> dict:
        win: Optional[Sequence[int]] = results.get(self.key)
        if win is None:
            return results
        x0, y0, x1, y1 = (int(v) for v in win)
        h, w = results['img'].shape[:2]
        if x1 > w or y1 > h:
            raise ValueError(f'crop window {tuple(win)} exceeds image '
                             f'{results.get("img_path")} of size {(h, w)}')
        results['img'] = np.ascontiguousarray(results['img'][y0:y1, x0:x1])
        for key in _seg_keys(results):
            seg = results[key]
            if seg.shape[:2] != (h, w):
                raise ValueError(
                    f'{key} of {results.get("seg_map_path")} is '
                    f'{seg.shape[:2]}, its image is {(h, w)}')
            results[key] = np.ascontiguousarray(seg[y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape[:2]
        results['ori_shape'] = results['img'].shape[:2]
        crop_geo_transform(results, x0, y0, x1 - x0, y1 - y0)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(key={self.key!r})'


@TRANSFORMS.register_module()
class GeoRandomCrop(MMSegRandomCrop):
    """MMSeg's ``RandomCrop`` that also shifts ``geo_transform``.

    The crop box is recorded where MMSeg draws it (``crop_bbox``), so the
    parent's cropping runs unchanged, and with its random draws (also when
    they are cached by ``cache_random_params``).
    """
    _BBOX_KEY = '_geo_crop_bbox'

    def crop_bbox(self, results: dict) -> tuple:
        bbox = super().crop_bbox(results)
        results[self._BBOX_KEY] = bbox
        return bbox

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        y1, y2, x1, x2 = results.pop(self._BBOX_KEY)
        # MMSeg's box may reach past a smaller image; the crop stops there
        h, w = results['img'].shape[:2]
        crop_geo_transform(results, x1, y1, w, h)
        return results


@TRANSFORMS.register_module()
class GeoRandomFlip(MMSegRandomFlip):
    """MMSeg's ``RandomFlip`` that also flips ``geo_transform``."""

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        h, w = results['img'].shape[:2]
        compose_geo_transform(
            results, flip_pixel_map(results['flip_direction'], h, w))


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Rescale image and seg maps by a factor ~ U(ratio_range) of their own
    size (S5: 0.5-2.0), whatever the input size; seg maps use nearest."""

    def __init__(self, ratio_range: Sequence[float] = (0.5, 2.0),
                 interpolation: str = 'bilinear'):
        if not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError(f'ratio_range must be positive, got '
                             f'{ratio_range}')
        self.ratio_range = tuple(ratio_range)
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        import mmcv
        r = float(np.random.uniform(*self.ratio_range))
        h, w = results['img'].shape[:2]
        size = (max(1, int(round(w * r))), max(1, int(round(h * r))))
        img = results['img']
        out = mmcv.imresize(img, size, interpolation=self.interpolation)
        if img.ndim == 3 and out.ndim == 2:  # OpenCV drops a single band
            out = out[..., None]
        results['img'] = out
        for key in _seg_keys(results):
            results[key] = mmcv.imresize(
                results[key], size, interpolation='nearest')
        results['img_shape'] = out.shape[:2]
        results['scale_factor'] = (size[0] / w, size[1] / h)
        results['keep_ratio'] = True
        # same extent, pixel size scaled (OpenCV resizes corner to corner)
        compose_geo_transform(results,
                              Affine.scale(w / size[0], h / size[1]))
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(ratio_range={self.ratio_range}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class RandomRot90(BaseTransform):
    """Rotate image and segmentation maps by k * 90 deg, k in {1, 2, 3}."""

    def __init__(self, prob: float = 0.5):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        k = int(np.random.randint(1, 4))
        h, w = results['img'].shape[:2]
        results['img'] = np.ascontiguousarray(np.rot90(results['img'], k))
        for key in _seg_keys(results):
            results[key] = np.ascontiguousarray(np.rot90(results[key], k))
        results['img_shape'] = results['img'].shape[:2]
        results['rot90_k'] = k
        compose_geo_transform(results, rot90_pixel_map(k, h, w))
        return results

    def __repr__(self):
        return f'{type(self).__name__}(prob={self.prob})'
