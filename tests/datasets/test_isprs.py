"""S5 Vaihingen / Potsdam datasets: 5 classes with clutter ignored, split
lists, dataset names, the label-range check."""
import cv2
import numpy as np
import pytest
from PIL import Image

import s5_mm  # noqa: F401
from s5_mm.datasets.isprs import S5PotsdamDataset, S5VaihingenDataset
from s5_mm.registry import DATASETS

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
META = ('img_path', 'seg_map_path', 'dataset_name')
# MMSeg converter ids: 0 undefined, 1..6 impervious, building, low veg, tree,
# car, clutter. S5: 5 classes, clutter and undefined ignored.
S5_OF_RAW = {0: 255, 1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 255}


def make_tile(root, split, name, seed, size=(6, 8), top=6):
    """Image + MMSeg-id mask with every id 0..top (row-major cycle)."""
    rng = np.random.default_rng(seed)
    h, w = size
    label = (np.arange(h * w).reshape(h, w) + seed) % (top + 1)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for d in ('img_dir', 'ann_dir'):
        (root / d / split).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / 'img_dir' / split / f'{name}.png'), img)
    cv2.imwrite(str(root / 'ann_dir' / split / f'{name}.png'),
                label.astype(np.uint8))
    return img, label


def expected_s5(mask_path):
    """Independent reading: PIL + the documented id mapping."""
    raw = np.array(Image.open(mask_path))
    return np.vectorize(S5_OF_RAW.get)(raw)


@pytest.mark.parametrize('cls,name', [(S5VaihingenDataset, 'vaihingen'),
                                      (S5PotsdamDataset, 'potsdam')])
def test_folder_layout_five_classes_clutter_ignored(tmp_path, cls, name):
    make_tile(tmp_path, 'train', 'a', 0)
    make_tile(tmp_path, 'train', 'b', 3)
    ds = cls(data_root=str(tmp_path),
             data_prefix=dict(img_path='img_dir/train',
                              seg_map_path='ann_dir/train'),
             pipeline=LOAD)
    assert len(ds) == 2
    assert ds.metainfo['classes'] == ('impervious_surface', 'building',
                                      'low_vegetation', 'tree', 'car')
    assert ds.metainfo['label_map'] == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4,
                                        5: 255}
    assert len(ds.metainfo['palette']) == 5
    assert ds.metainfo['dataset_name'] == name
    for i in range(2):
        out = ds[i]
        exp = expected_s5(out['seg_map_path'])
        np.testing.assert_array_equal(out['gt_seg_map'], exp)
        assert out['dataset_name'] == name
    # raw clutter (6) and undefined (0) are both ignored, never id 5
    assert set(np.unique(ds[0]['gt_seg_map'])) == {0, 1, 2, 3, 4, 255}


def test_registered_and_six_class_option(tmp_path):
    make_tile(tmp_path, 'val', 'a', 0)
    cfg = dict(type='S5VaihingenDataset', data_root=str(tmp_path),
               data_prefix=dict(img_path='img_dir/val',
                                seg_map_path='ann_dir/val'),
               pipeline=LOAD)
    assert isinstance(DATASETS.build(cfg), S5VaihingenDataset)
    six = DATASETS.build(dict(cfg, metainfo=dict(
        classes=S5VaihingenDataset.METAINFO['classes'])))
    assert len(six.metainfo['classes']) == 6
    raw = np.array(Image.open(six[0]['seg_map_path']))
    np.testing.assert_array_equal(
        six[0]['gt_seg_map'], np.where(raw == 0, 255, raw.astype(int) - 1))


def test_split_lists_two_column_one_column_mixed(tmp_path):
    make_tile(tmp_path, 'train', 'a', 0)
    make_tile(tmp_path, 'train', 'b', 1)
    make_tile(tmp_path, 'val', 'c', 2)
    (tmp_path / 'split.txt').write_text(
        '# S5 list\n'
        'img_dir/val/c.png ann_dir/val/c.png\n'
        '\n'
        'b\n')
    ds = S5PotsdamDataset(
        data_root=str(tmp_path), ann_file='split.txt',
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train'),
        pipeline=LOAD)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [i['img_path'] for i in infos] == [
        str(tmp_path / 'img_dir/val/c.png'),
        str(tmp_path / 'img_dir/train/b.png')]
    assert [i['seg_map_path'] for i in infos] == [
        str(tmp_path / 'ann_dir/val/c.png'),
        str(tmp_path / 'ann_dir/train/b.png')]
    for i in range(2):
        np.testing.assert_array_equal(ds[i]['gt_seg_map'],
                                      expected_s5(infos[i]['seg_map_path']))


def test_dataset_name_survives_pack_seg_inputs(tmp_path):
    make_tile(tmp_path, 'train', 'a', 0)
    ds = S5VaihingenDataset(
        data_root=str(tmp_path), dataset_name='vaihingen_b',
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train'),
        pipeline=LOAD + [dict(type='PackSegInputs', meta_keys=META)])
    sample = ds[0]['data_samples']
    assert sample.metainfo['dataset_name'] == 'vaihingen_b'
    assert ds.metainfo['dataset_name'] == 'vaihingen_b'
    gt = sample.gt_sem_seg.data.numpy()[0]
    np.testing.assert_array_equal(gt, expected_s5(sample.seg_map_path))


def test_label_beyond_class_count_names_file_and_values(tmp_path):
    make_tile(tmp_path, 'train', 'bad', 0, top=8)  # raw 7, 8: no such class
    kw = dict(data_root=str(tmp_path),
              data_prefix=dict(img_path='img_dir/train',
                               seg_map_path='ann_dir/train'))
    ds = S5VaihingenDataset(pipeline=LOAD, **kw)
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert 'ann_dir/train/bad.png' in msg and '(vaihingen)' in msg
    assert '[6, 7]' in msg  # after reduce_zero_label
    assert 'values in the file: [0, 1, 2, 3, 4, 5, 6, 7, 8]' in msg
    # opt-out
    out = S5VaihingenDataset(pipeline=LOAD, check_labels=False, **kw)[0]
    assert {6, 7} <= set(np.unique(out['gt_seg_map']))


def test_bad_inputs(tmp_path):
    make_tile(tmp_path, 'train', 'a', 0)
    prefix = dict(img_path='img_dir/train', seg_map_path='ann_dir/train')
    with pytest.raises(FileNotFoundError, match='nowhere.txt'):
        S5VaihingenDataset(data_root=str(tmp_path), ann_file='nowhere.txt',
                           data_prefix=prefix)
    with pytest.raises(FileNotFoundError, match='img_dir/test'):
        S5VaihingenDataset(data_root=str(tmp_path),
                           data_prefix=dict(img_path='img_dir/test'))
    (tmp_path / 'three.txt').write_text('a\nx y z\n')
    with pytest.raises(ValueError, match=r'three.txt:2: .*3 columns'):
        S5VaihingenDataset(data_root=str(tmp_path), ann_file='three.txt',
                           data_prefix=prefix)
    (tmp_path / 'gone.txt').write_text('img_dir/train/a.png ann_dir/x.png\n')
    with pytest.raises(FileNotFoundError, match='ann_dir/x.png'):
        S5VaihingenDataset(data_root=str(tmp_path), ann_file='gone.txt')
    (tmp_path / 'empty.txt').write_text('\n')
    with pytest.raises(ValueError, match='no samples'):
        S5VaihingenDataset(data_root=str(tmp_path), ann_file='empty.txt')
    with pytest.raises(ValueError, match='dataset_name'):
        S5VaihingenDataset(data_root=str(tmp_path), data_prefix=prefix,
                           dataset_name=3)
