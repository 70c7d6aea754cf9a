"""ISPRS Vaihingen and Potsdam with S5's protocol: 5 classes, clutter ignored.

Masks are MMSeg's converter ids (``tools/dataset_converters/vaihingen.py``,
``potsdam.py``): 0 = undefined / eroded boundary, 1..6 = impervious surface,
building, low vegetation, tree, car, clutter. MMSeg's ``reduce_zero_label``
turns them into 255, 0..5; the default 5-class ``metainfo`` then maps
clutter (5) to 255 through ``label_map``, so clutter is never a class nor
counted as one (the official S5 code let it equal ``num_classes``, which
its IoU scored as car). Pass ``metainfo=dict(classes=<6 names>)`` for
MMSeg's 6-class protocol.

Layout (``data_root``): ``img_dir/{train,val}/X.png``,
``ann_dir/{train,val}/X.png``, or a split list (see ``seg_lists``).
"""
from mmseg.datasets import ISPRSDataset, PotsdamDataset

from s5_mm.datasets.seg_lists import S5SegDatasetMixin
from s5_mm.registry import DATASETS

ISPRS_5_CLASSES = ('impervious_surface', 'building', 'low_vegetation',
                   'tree', 'car')


def _five_classes(metainfo):
    """S5's classes unless the caller chose some."""
    metainfo = dict(metainfo or {})
    metainfo.setdefault('classes', ISPRS_5_CLASSES)
    return metainfo


@DATASETS.register_module()
class S5VaihingenDataset(S5SegDatasetMixin, ISPRSDataset):
    """ISPRS Vaihingen, 5 classes (clutter -> 255); see the module doc."""
    DEFAULT_NAME = 'vaihingen'

    def __init__(self, metainfo=None, **kwargs):
        super().__init__(metainfo=_five_classes(metainfo), **kwargs)


@DATASETS.register_module()
class S5PotsdamDataset(S5SegDatasetMixin, PotsdamDataset):
    """ISPRS Potsdam, 5 classes (clutter -> 255); see the module doc."""
    DEFAULT_NAME = 'potsdam'

    def __init__(self, metainfo=None, **kwargs):
        super().__init__(metainfo=_five_classes(metainfo), **kwargs)
