"""OpenEarthMapDataset: 9 classes incl. 'unknown', xBD exclusion, lists."""
import cv2
import numpy as np
import pytest
from PIL import Image

import s5_mm  # noqa: F401
from s5_mm.datasets.openearthmap import (OEM_8_CLASSES, OEM_CLASSES,
                                         OpenEarthMapDataset)

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
PREFIX = dict(img_path='img_dir/train', seg_map_path='ann_dir/train')


def make_tiles(root, names, top=8, split='train'):
    for d in ('img_dir', 'ann_dir'):
        (root / d / split).mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        label = ((np.arange(7 * 5).reshape(7, 5) + k) % (top + 1))
        cv2.imwrite(str(root / 'img_dir' / split / f'{name}.png'),
                    np.full((7, 5, 3), k, np.uint8))
        cv2.imwrite(str(root / 'ann_dir' / split / f'{name}.png'),
                    label.astype(np.uint8))


def test_nine_classes_values_unchanged(tmp_path):
    make_tiles(tmp_path, ['aachen_1', 'tokyo_2'])
    ds = OpenEarthMapDataset(data_root=str(tmp_path), data_prefix=PREFIX,
                             pipeline=LOAD)
    assert ds.metainfo['classes'] == OEM_CLASSES
    assert len(OEM_CLASSES) == 9 and OEM_CLASSES[0] == 'unknown'
    assert ds.metainfo['reduce_zero_label'] is False
    for i in range(2):
        out = ds[i]
        raw = np.array(Image.open(out['seg_map_path']))
        np.testing.assert_array_equal(out['gt_seg_map'], raw)
        assert out['dataset_name'] == 'openearthmap'
    assert set(np.unique(ds[0]['gt_seg_map'])) == set(range(9))


def test_eight_class_protocol_ignores_unknown(tmp_path):
    make_tiles(tmp_path, ['aachen_1'])
    ds = OpenEarthMapDataset(data_root=str(tmp_path), data_prefix=PREFIX,
                             metainfo=dict(classes=OEM_8_CLASSES),
                             pipeline=LOAD)
    raw = np.array(Image.open(ds[0]['seg_map_path'])).astype(int)
    np.testing.assert_array_equal(ds[0]['gt_seg_map'],
                                  np.where(raw == 0, 255, raw - 1))
    assert len(ds.metainfo['palette']) == 8


def test_exclude_list_drops_xbd_tiles(tmp_path):
    make_tiles(tmp_path, ['adelaide_1', 'adelaide_2', 'aachen_1'])
    (tmp_path / 'xbd_files.csv').write_text(
        'pinery-bushfire_00000022_pre_disaster.png,adelaide_1.tif\n'
        'pinery-bushfire_00000029_pre_disaster.png,adelaide_2.tif\n')
    ds = OpenEarthMapDataset(data_root=str(tmp_path), data_prefix=PREFIX,
                             exclude_list='xbd_files.csv', pipeline=LOAD)
    assert len(ds) == 1 and ds.num_excluded == 2
    assert ds.get_data_info(0)['img_path'].endswith('aachen_1.png')
    # S5 two-column list into the release's city folders, same exclusion
    (tmp_path / 'list.txt').write_text(
        'img_dir/train/adelaide_2.png ann_dir/train/adelaide_2.png\n'
        'img_dir/train/aachen_1.png ann_dir/train/aachen_1.png\n')
    ds = OpenEarthMapDataset(data_root=str(tmp_path), ann_file='list.txt',
                             exclude_list='xbd_files.csv', pipeline=LOAD)
    assert len(ds) == 1 and ds.num_excluded == 1
    with pytest.raises(FileNotFoundError, match='exclude_list.*nope.csv'):
        OpenEarthMapDataset(data_root=str(tmp_path), data_prefix=PREFIX,
                            exclude_list='nope.csv')
    (tmp_path / 'all.csv').write_text('adelaide_1\naachen_1 adelaide_2\n')
    with pytest.raises(ValueError, match='no samples'):
        OpenEarthMapDataset(data_root=str(tmp_path), data_prefix=PREFIX,
                            exclude_list='all.csv')


def test_label_nine_fails(tmp_path):
    make_tiles(tmp_path, ['bad_1'], top=9)
    ds = OpenEarthMapDataset(data_root=str(tmp_path), data_prefix=PREFIX,
                             pipeline=LOAD)
    with pytest.raises(ValueError, match=r'bad_1.png \(openearthmap\) has '
                       r'label ids \[9\] outside 0..8'):
        ds[0]
