"""Display composites of multispectral images."""
import numpy as np


def to_display_rgb(img, rgb_bands=(0, 1, 2), valid_mask=None,
                   percentiles=(2, 98)):
    """HxWxC array -> HxWx3 uint8, each band stretched between percentiles
    of its valid pixels."""
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    bands = [b if b < img.shape[2] else img.shape[2] - 1 for b in rgb_bands]
    rgb = img[..., bands]
    valid = np.ones(rgb.shape[:2], bool) if valid_mask is None else \
        np.asarray(valid_mask, bool)
    out = np.zeros(rgb.shape, np.uint8)
    for c in range(3):
        vals = rgb[..., c][valid]
        if vals.size == 0:
            continue
        lo, hi = np.percentile(vals, percentiles)
        scale = 255.0 / max(hi - lo, 1e-6)
        out[..., c] = np.clip((rgb[..., c] - lo) * scale, 0, 255)
    out[~valid] = 0
    return out
