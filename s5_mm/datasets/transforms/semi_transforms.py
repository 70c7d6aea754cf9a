"""S4P pipeline transforms: padding masks and multi-band strong views.

The geometric ones (``RandomRescale``, ``RandomRot90``) are in
:mod:`s5_mm.datasets.transforms.geometric`.

Strong photometric transforms work on any band count. Brightness, contrast
and blur act on every band (contrast per band around its own mean, since
bands differ in scale). Saturation, hue and grayscale are defined on colour,
so they act only on the three ``rgb_bands`` (indexes of R, G, B); with
``rgb_bands='auto'`` a 3-band image is taken as BGR (MMCV's loading order)
and other band counts skip the colour-only operations. Integer images are
clipped to their dtype range after each operation; float images (e.g.
reflectance) are not clipped, their value range being unknown.
"""
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from s5_mm.registry import TRANSFORMS

RgbBands = Union[str, Sequence[int], None]
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # R, G, B


def resolve_rgb_bands(num_bands: int,
                      rgb_bands: RgbBands) -> Optional[Tuple[int, ...]]:
    """Indexes of (R, G, B) in the image, or None for no colour bands."""
    if rgb_bands is None:
        return None
    if rgb_bands == 'auto':
        return (2, 1, 0) if num_bands == 3 else None
    rgb = tuple(int(i) for i in rgb_bands)
    if len(rgb) != 3 or not all(0 <= i < num_bands for i in rgb):
        raise ValueError(f'rgb_bands {rgb_bands} must be 3 band indexes of '
                         f'a {num_bands}-band image')
    return rgb


def _as_float_hwc(img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32)
    return x[..., None] if x.ndim == 2 else x


def _restore(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    if like.ndim == 2:
        x = x[..., 0]
    if np.issubdtype(like.dtype, np.integer):
        info = np.iinfo(like.dtype)
        x = np.clip(np.rint(x), info.min, info.max)
    return x.astype(like.dtype)


def _clip_like(x: np.ndarray, dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        np.clip(x, info.min, info.max, out=x)
    return x


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma of an (..., 3) R, G, B array."""
    return rgb @ _LUMA


def shift_hue(rgb: np.ndarray, delta: float) -> np.ndarray:
    """Rotate the HSV hue of an (..., 3) R, G, B array by ``delta`` turns.

    Hue and saturation are scale free, so any non-negative value range works.
    """
    rgb = np.maximum(rgb, 0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc = rgb.max(-1)
    minc = rgb.min(-1)
    span = maxc - minc
    safe = np.where(span > 0, span, 1)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(r == maxc, bc - gc,
                 np.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(span > 0, (h / 6.0) % 1.0, 0.0)
    s = np.where(maxc > 0, span / np.where(maxc > 0, maxc, 1), 0.0)
    v = maxc
    h = (h + delta) % 1.0
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    out_r = np.choose(i, [v, q, p, p, t, v])
    out_g = np.choose(i, [t, v, v, q, p, p])
    out_b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([out_r, out_g, out_b], axis=-1).astype(rgb.dtype)


@TRANSFORMS.register_module()
class AddPaddingMask(BaseTransform):
    """Give an unlabelled sample a ``gt_seg_map`` that marks padding.

    0 on image pixels; later geometric transforms (resize nearest, crop,
    flip, pad with ``ignore_index``) then carry the mask, and the S4P
    segmentor ignores pixels equal to ``ignore_index``. Pixels where
    ``results[valid_key]`` is False (nodata, as ``LoadGeoImageFromFile``
    flags it) are ignored from the start.
    """

    def __init__(self, ignore_index: int = 255,
                 valid_key: Optional[str] = 'valid_mask'):
        self.ignore_index = ignore_index
        self.valid_key = valid_key

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        mask = np.zeros((h, w), dtype=np.uint8)
        valid = results.get(self.valid_key) if self.valid_key else None
        if valid is not None:
            valid = np.asarray(valid, dtype=bool)
            if valid.shape != (h, w):
                raise ValueError(
                    f'{self.valid_key} of {results.get("img_path")} is '
                    f'{valid.shape}, the image is {(h, w)}')
            mask[~valid] = self.ignore_index
        results['gt_seg_map'] = mask
        fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in fields:
            fields.append('gt_seg_map')
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(ignore_index={self.ignore_index}, '
                f'valid_key={self.valid_key!r})')


@TRANSFORMS.register_module()
class MultiBandColorJitter(BaseTransform):
    """Colour jitter (brightness, contrast, saturation, hue) in random order.

    Factors as torchvision's ColorJitter: brightness/contrast/saturation
    ``U(1 - a, 1 + a)``, hue shift ``U(-hue, hue)`` turns. See the module
    docstring for multi-band behaviour.
    """

    def __init__(self,
                 brightness: float = 0.5,
                 contrast: float = 0.5,
                 saturation: float = 0.5,
                 hue: float = 0.25,
                 prob: float = 0.8,
                 rgb_bands: RgbBands = 'auto'):
        if not 0 <= hue <= 0.5:
            raise ValueError(f'hue must be in [0, 0.5], got {hue}')
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.prob = prob
        self.rgb_bands = rgb_bands

    @staticmethod
    def _factor(a: float) -> float:
        return float(np.random.uniform(max(0.0, 1 - a), 1 + a))

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img']
        x = _as_float_hwc(img)
        rgb = resolve_rgb_bands(x.shape[2], self.rgb_bands)
        rgb = list(rgb) if rgb is not None else None
        for op in np.random.permutation(4):
            if op == 0 and self.brightness > 0:
                x *= self._factor(self.brightness)
            elif op == 1 and self.contrast > 0:
                c = self._factor(self.contrast)
                mean = x.mean(axis=(0, 1), keepdims=True)
                x = c * x + (1 - c) * mean
            elif op == 2 and self.saturation > 0 and rgb is not None:
                s = self._factor(self.saturation)
                gray = rgb_to_gray(x[..., rgb])[..., None]
                x[..., rgb] = s * x[..., rgb] + (1 - s) * gray
            elif op == 3 and self.hue > 0 and rgb is not None:
                delta = float(np.random.uniform(-self.hue, self.hue))
                x[..., rgb] = shift_hue(x[..., rgb], delta)
            x = _clip_like(x, img.dtype)
        results['img'] = _restore(x, img)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(brightness={self.brightness}, '
                f'contrast={self.contrast}, saturation={self.saturation}, '
                f'hue={self.hue}, prob={self.prob}, '
                f'rgb_bands={self.rgb_bands!r})')


@TRANSFORMS.register_module()
class MultiBandGrayscale(BaseTransform):
    """Replace the R, G, B bands by their luma; other bands are kept.

    Images without colour bands (see ``rgb_bands``) pass unchanged.
    """

    def __init__(self, prob: float = 0.2, rgb_bands: RgbBands = 'auto'):
        self.prob = prob
        self.rgb_bands = rgb_bands

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img']
        x = _as_float_hwc(img)
        rgb = resolve_rgb_bands(x.shape[2], self.rgb_bands)
        if rgb is None:
            return results
        rgb = list(rgb)
        x[..., rgb] = rgb_to_gray(x[..., rgb])[..., None]
        results['img'] = _restore(x, img)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'rgb_bands={self.rgb_bands!r})')


@TRANSFORMS.register_module()
class MultiBandGaussianBlur(BaseTransform):
    """Gaussian blur of every band, sigma ~ U(sigma_range) pixels."""

    def __init__(self, sigma: Sequence[float] = (0.1, 2.0), prob: float = 0.5):
        if not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f'sigma range must be positive, got {sigma}')
        self.sigma = tuple(sigma)
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img']
        s = float(np.random.uniform(*self.sigma))
        x = _as_float_hwc(img)
        # Band by band: OpenCV filters are only guaranteed up to 4 channels.
        out = np.stack([
            cv2.GaussianBlur(
                x[..., c], (0, 0), sigmaX=s, sigmaY=s,
                borderType=cv2.BORDER_REFLECT_101)
            for c in range(x.shape[2])
        ], axis=-1)
        results['img'] = _restore(out, img)
        results['blur_sigma'] = s
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(sigma={self.sigma}, '
                f'prob={self.prob})')
