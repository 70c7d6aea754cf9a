"""Segmentation visualisation for multispectral / GeoTIFF inputs.

MMSeg's SegVisualizationHook decodes ``img_path`` as an 8-bit picture, which
fails for a 6-band float GeoTIFF or a list of band files. This hook reads the
image with the geo loader and shows a percentile-stretched composite of three
chosen bands (e.g. a false-colour NIR/red/green).
"""
import os.path as osp

import numpy as np
from mmseg.engine.hooks import SegVisualizationHook

from s5_mm.registry import HOOKS


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


@HOOKS.register_module()
class GeoSegVisualizationHook(SegVisualizationHook):
    """Like SegVisualizationHook, reading images with LoadGeoImageFromFile.

    Args:
        rgb_bands (tuple[int]): 0-based bands shown as R, G, B.
        All other arguments as SegVisualizationHook.
    """

    def __init__(self, rgb_bands=(0, 1, 2), **kwargs):
        super().__init__(**kwargs)
        self.rgb_bands = tuple(rgb_bands)
        from s5_mm.datasets.transforms.geo_loading import \
            LoadGeoImageFromFile
        self._loader = LoadGeoImageFromFile()

    def _read(self, img_path):
        results = self._loader(dict(img_path=img_path))
        return to_display_rgb(results['img'], self.rgb_bands,
                              results.get('valid_mask'))

    @staticmethod
    def _name(img_path):
        path = img_path[0] if isinstance(img_path, (list, tuple)) else \
            img_path
        return osp.basename(path)

    def after_val_iter(self, runner, batch_idx, data_batch, outputs):
        if self.draw is False or not self.every_n_inner_iters(
                batch_idx, self.interval):
            return
        for output in outputs:
            self._visualizer.add_datasample(
                f'val_{self._name(output.img_path)}',
                self._read(output.img_path), data_sample=output,
                show=self.show, wait_time=self.wait_time, step=runner.iter)

    def after_test_iter(self, runner, batch_idx, data_batch, outputs):
        if self.draw is False:
            return
        for output in outputs:
            self._test_index += 1
            self._visualizer.add_datasample(
                self._name(output.img_path), self._read(output.img_path),
                data_sample=output, show=self.show,
                wait_time=self.wait_time, step=self._test_index)
