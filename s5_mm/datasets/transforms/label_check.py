"""Check that a loaded segmentation mask only holds valid class ids.

A mask with ids >= the class count silently trains a wrong model (CE on
CPU raises a cryptic index error, on GPU a device assert) and skews the
metric. ``CheckLabelRange`` runs right after the annotation loader, i.e.
after ``reduce_zero_label`` and the dataset's ``label_map`` were applied,
and raises naming the file, the offending ids and the raw file values.
The S5 fine-tuning datasets insert it themselves (``check_labels=True``).
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from s5_mm.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckLabelRange(BaseTransform):
    """Raise when ``results[key]`` has ids outside ``[0, num_classes)``.

    Args:
        num_classes (int): number of classes of the dataset.
        ignore_index (int): the one id allowed beyond the range.
        key (str): the seg map to check.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 key: str = 'gt_seg_map'):
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.key = key

    def transform(self, results: dict) -> dict:
        seg: Optional[np.ndarray] = results.get(self.key)
        if seg is None:
            return results
        bad = (seg >= self.num_classes) | (seg < 0)
        bad &= seg != self.ignore_index
        if bad.any():
            raise ValueError(self._message(results, np.unique(seg[bad])))
        return results

    def _message(self, results: dict, values: np.ndarray) -> str:
        path = results.get('seg_map_path', '<unknown file>')
        name = results.get('dataset_name')
        raw = _raw_values(path)
        return (f'mask {path}{f" ({name})" if name else ""} has label ids '
                f'{values.tolist()} outside 0..{self.num_classes - 1} '
                f'(ignore {self.ignore_index}) after reduce_zero_label='
                f'{results.get("reduce_zero_label")} and label_map='
                f'{results.get("label_map")}; values in the file: {raw}')

    def __repr__(self):
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, key={self.key!r})')


def _raw_values(path) -> str:
    """The distinct values of the mask file, for the error message only."""
    try:
        import mmcv
        import mmengine.fileio as fileio
        arr = mmcv.imfrombytes(fileio.get(path), flag='unchanged',
                               backend='pillow')
        return str(np.unique(arr).tolist())
    except Exception as e:  # the message must not fail on its own
        return f'<unreadable: {e}>'


def insert_label_check(pipeline, num_classes: int,
                       ignore_index: int = 255) -> bool:
    """Insert ``CheckLabelRange`` after the first annotation loader of a
    built ``Compose``; no-op when it already has one or loads no labels.

    Returns whether a check is (now) in the pipeline.
    """
    transforms = getattr(pipeline, 'transforms', None)
    if transforms is None:
        return False
    if any(isinstance(t, CheckLabelRange) for t in transforms):
        return True
    for i, t in enumerate(transforms):
        name = type(t).__name__  # LoadAnnotations, LoadGeoAnnotations, ...
        if name.startswith('Load') and name.endswith('Annotations'):
            transforms.insert(i + 1,
                              CheckLabelRange(num_classes, ignore_index))
            return True
    return False
