"""Segmentation visualisation for multispectral / GeoTIFF inputs.

MMSeg's SegVisualizationHook decodes ``img_path`` as an 8-bit picture, which
fails for a 6-band float GeoTIFF or a list of band files. This hook reads the
image with the geo loader and shows a percentile-stretched composite of three
chosen bands (e.g. a false-colour NIR/red/green).
"""
import os.path as osp

from mmseg.engine.hooks import SegVisualizationHook

from s5_mm.datasets.transforms.geo_loading import LoadGeoImageFromFile
from s5_mm.registry import HOOKS
from s5_mm.visualization.display import to_display_rgb


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
