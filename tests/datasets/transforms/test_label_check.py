"""CheckLabelRange and its insertion into dataset pipelines."""
import numpy as np
import pytest
from mmengine.dataset import Compose

import s5_mm  # noqa: F401
from s5_mm.datasets.transforms.label_check import (CheckLabelRange,
                                                   insert_label_check)

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'


def test_range_and_ignore():
    t = CheckLabelRange(num_classes=3, ignore_index=255)
    ok = dict(gt_seg_map=np.array([[0, 1], [2, 255]], np.uint8))
    assert t(ok) is ok
    assert t(dict(img=np.zeros((2, 2)))) is not None  # no labels: pass
    with pytest.raises(ValueError, match=r'm.png has label ids \[3, 254\] '
                       r'outside 0..2 \(ignore 255\)'):
        t(dict(gt_seg_map=np.array([[3, 254], [0, 255]], np.uint8),
               seg_map_path='m.png'))
    with pytest.raises(ValueError, match=r'\[-1\]'):
        t(dict(gt_seg_map=np.array([[-1, 0]]), seg_map_path='m.png'))
    with pytest.raises(ValueError, match='num_classes'):
        CheckLabelRange(num_classes=0)


def test_insert_after_loader_once():
    pipe = Compose([dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations'),
                    dict(type='PackSegInputs')])
    assert insert_label_check(pipe, 5)
    names = [type(t).__name__ for t in pipe.transforms]
    assert names == ['LoadImageFromFile', 'LoadAnnotations',
                     'CheckLabelRange', 'PackSegInputs']
    assert insert_label_check(pipe, 5)  # already there: not twice
    assert len(pipe.transforms) == 4
    no_labels = Compose([dict(type='LoadImageFromFile')])
    assert not insert_label_check(no_labels, 5)
    assert len(no_labels.transforms) == 1
