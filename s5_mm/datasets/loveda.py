"""LoveDA with S5's protocol: 7 classes, mask 0 (no-data) ignored.

Release masks: 0 = no-data, 1..7 = background, building, road, water,
barren, forest, agriculture; MMSeg's ``reduce_zero_label`` maps them to
255, 0..6. Layout (``data_root``, ``tools/dataset_converters/loveda.py``):
``img_dir/{train,val,test}/X.png``, ``ann_dir/{train,val}/X.png`` (Urban
and Rural together; the converter also writes per-domain base-name lists),
or a split list (see ``seg_lists``), which may point into the release
folders directly (``Train/Rural/images_png/0.png
Train/Rural/masks_png/0.png``).
"""
from mmseg.datasets import LoveDADataset

from s5_mm.datasets.seg_lists import S5SegDatasetMixin
from s5_mm.registry import DATASETS


@DATASETS.register_module()
class S5LoveDADataset(S5SegDatasetMixin, LoveDADataset):
    """LoveDA, 7 classes, no-data -> 255; see the module doc."""
    DEFAULT_NAME = 'loveda'
