"""S5iSAIDDataset: MMSeg layout, S5 quadrants, two-column split files."""
import cv2
import numpy as np
import pytest

import s5_mm  # noqa: F401
from s5_mm.datasets.isaid import S5iSAIDDataset

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


def make_patch(root, split, name, size=8):
    """Image/label whose pixel value encodes its position: v = 10*y + x."""
    yy, xx = np.mgrid[:size, :size]
    label = (yy * 10 + xx).astype(np.uint8) % 16
    img = np.stack([yy * 10 + xx] * 3, -1).astype(np.uint8)
    for d in ('img_dir', 'ann_dir'):
        (root / d / split).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / 'img_dir' / split / f'{name}.png'), img)
    cv2.imwrite(
        str(root / 'ann_dir' / split / f'{name}_instance_color_RGB.png'),
        label)
    return img, label


def test_mmseg_layout(tmp_path):
    make_patch(tmp_path, 'train', 'P0001')
    make_patch(tmp_path, 'train', 'P0002')
    ds = S5iSAIDDataset(
        data_root=str(tmp_path),
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train'),
        pipeline=LOAD)
    assert len(ds) == 2
    assert len(ds.metainfo['classes']) == 16
    assert ds.metainfo['classes'][0] == 'background'
    out = ds[0]
    assert out['img'].shape == (8, 8, 3)
    assert out['gt_seg_map'].shape == (8, 8)


def test_s5_quadrants(tmp_path):
    img, label = make_patch(tmp_path, 'val', 'P0007')
    ds = S5iSAIDDataset(
        data_root=str(tmp_path), quadrants=True, patch_size=8, crop_size=4,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=LOAD + [dict(type='CropWindow')])
    assert len(ds) == 4
    windows = [ds.get_data_info(i)['crop_window'] for i in range(4)]
    assert windows == [(0, 0, 4, 4), (4, 0, 8, 4), (0, 4, 4, 8),
                       (4, 4, 8, 8)]
    for i, (x0, y0, x1, y1) in enumerate(windows):
        out = ds[i]
        assert out['img'].shape == (4, 4, 3)
        assert np.array_equal(out['img'][..., 0], img[y0:y1, x0:x1, 0])
        assert np.array_equal(out['gt_seg_map'], label[y0:y1, x0:x1])
        assert out['ori_shape'] == (4, 4)


def test_quadrants_need_cropwindow_and_fitting_patches(tmp_path):
    make_patch(tmp_path, 'val', 'P0007', size=6)
    kw = dict(data_root=str(tmp_path), quadrants=True, patch_size=8,
              crop_size=4,
              data_prefix=dict(img_path='img_dir/val',
                               seg_map_path='ann_dir/val'))
    with pytest.raises(ValueError, match='CropWindow'):
        S5iSAIDDataset(pipeline=LOAD, **kw)
    ds = S5iSAIDDataset(pipeline=LOAD + [dict(type='CropWindow')], **kw)
    with pytest.raises(ValueError, match='P0007.png'):
        ds[3]
    with pytest.raises(ValueError, match='multiple'):
        S5iSAIDDataset(quadrants=True, patch_size=10, crop_size=4)


def test_two_column_split_file(tmp_path):
    make_patch(tmp_path / 'x', 'train', 'A')
    (tmp_path / 'split.txt').write_text(
        'x/img_dir/train/A.png x/ann_dir/train/A_instance_color_RGB.png\n')
    ds = S5iSAIDDataset(data_root=str(tmp_path), ann_file='split.txt',
                        pipeline=LOAD)
    assert len(ds) == 1
    assert ds[0]['gt_seg_map'].shape == (8, 8)
    (tmp_path / 'bad.txt').write_text('a b\nc\n')
    with pytest.raises(ValueError, match='bad.txt:2'):
        S5iSAIDDataset(data_root=str(tmp_path), ann_file='bad.txt')


def test_missing_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope'):
        S5iSAIDDataset(data_root=str(tmp_path),
                       data_prefix=dict(img_path='nope', seg_map_path='n'))
    with pytest.raises(FileNotFoundError, match='split.txt'):
        S5iSAIDDataset(data_root=str(tmp_path), ann_file='split.txt')
