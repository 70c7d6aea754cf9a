"""Segmentation visualizer for multi-dataset test sets."""
from typing import Optional

from mmengine.dist import master_only
from mmseg.visualization import SegLocalVisualizer

from s5_mm.registry import VISUALIZERS


@VISUALIZERS.register_module()
class S5SegLocalVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` that also draws multi-dataset predictions.

    With a list of per-dataset metainfos as ``dataset_meta`` (what the
    test loop sets for an ``MDFConcatDataset``) each sample is drawn with
    the classes and palette of its ``metainfo['dataset_name']`` and named
    ``<dataset_name>_<name>`` (one tile may belong to several datasets).
    ``name_prefix`` goes in front of every name (the S4P teacher-student
    test loop sets it per network). Otherwise as ``SegLocalVisualizer``.
    """

    def __init__(self, name: str = 'visualizer', *args,
                 name_prefix: str = '', **kwargs):
        # (mmengine's ManagerMeta needs `name` in the signature)
        super().__init__(name, *args, **kwargs)
        self.name_prefix = name_prefix

    @master_only
    def add_datasample(self, name: str, image, data_sample=None,
                       *args, **kwargs) -> None:
        metas = self.dataset_meta
        if not isinstance(metas, (list, tuple)):
            return super().add_datasample(self.name_prefix + name, image,
                                          data_sample, *args, **kwargs)
        by_name = {m.get('dataset_name'): m for m in metas}
        ds: Optional[str] = None if data_sample is None else \
            data_sample.metainfo.get('dataset_name')
        if ds not in by_name:
            raise KeyError(f'{type(self).__name__}: sample {name!r} has '
                           f'dataset_name {ds!r}; the test set has '
                           f'{list(by_name)}')
        self._dataset_meta = by_name[ds]
        try:
            super().add_datasample(f'{self.name_prefix}{ds}_{name}', image,
                                   data_sample, *args, **kwargs)
        finally:
            self._dataset_meta = metas
