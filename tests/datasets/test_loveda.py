"""S5LoveDADataset on the real LoveDA sample: 7 classes, no-data ignored."""
import numpy as np
import pytest
from PIL import Image

import s5_mm  # noqa: F401
from s5_mm.datasets.loveda import S5LoveDADataset

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
SCENES = [('Train', 0), ('Train', 1), ('Val', 2)]


def expected(mask_path):
    """Independent reading: 0 (no-data) -> 255, 1..7 -> 0..6."""
    raw = np.array(Image.open(mask_path)).astype(np.int64)
    return np.where(raw == 0, 255, raw - 1)


def test_release_layout_through_s5_list(shared_data, tmp_path):
    root = shared_data / 'loveda_sample'
    (tmp_path / 'all.txt').write_text(''.join(
        f'{s}/Rural/images_png/{n}.png {s}/Rural/masks_png/{n}.png\n'
        for s, n in SCENES))
    ds = S5LoveDADataset(
        data_root=str(root), ann_file=str(tmp_path / 'all.txt'),
        pipeline=LOAD + [dict(type='PackSegInputs',
                              meta_keys=('img_path', 'dataset_name'))])
    assert len(ds) == 3
    assert len(ds.metainfo['classes']) == 7
    assert ds.metainfo['classes'][0] == 'background'
    seen = set()
    for i, (s, n) in enumerate(SCENES):
        out = ds[i]
        sample = out['data_samples']
        assert sample.metainfo['dataset_name'] == 'loveda'
        assert sample.img_path.endswith(f'{s}/Rural/images_png/{n}.png')
        gt = sample.gt_sem_seg.data.numpy()[0]
        exp = expected(root / s / 'Rural' / 'masks_png' / f'{n}.png')
        np.testing.assert_array_equal(gt, exp)
        img = np.array(Image.open(root / s / 'Rural' / 'images_png' /
                                  f'{n}.png').convert('RGB'))
        np.testing.assert_array_equal(out['inputs'].numpy().transpose(1, 2, 0),
                                      img[..., ::-1])  # BGR
        seen |= set(np.unique(gt).tolist())
    assert seen <= set(range(7)) | {255} and len(seen) >= 4


def test_base_name_list_and_bad_mask(shared_data, tmp_path):
    root = shared_data / 'loveda_sample'
    (tmp_path / 'train.txt').write_text('1\n0\n')
    ds = S5LoveDADataset(
        data_root=str(root), ann_file=str(tmp_path / 'train.txt'),
        data_prefix=dict(img_path='Train/Rural/images_png',
                         seg_map_path='Train/Rural/masks_png'),
        pipeline=LOAD)
    assert [ds.get_data_info(i)['img_path'][-5:] for i in range(2)] == [
        '1.png', '0.png']
    np.testing.assert_array_equal(
        ds[0]['gt_seg_map'],
        expected(root / 'Train' / 'Rural' / 'masks_png' / '1.png'))
    # a mask with LoveDA id 9 (no such class) fails naming the file
    raw = np.array(Image.open(root / 'Train' / 'Rural' / 'masks_png' /
                              '0.png'))
    raw[:2, :2] = 9
    Image.fromarray(raw).save(tmp_path / 'bad.png')
    (tmp_path / 'bad.txt').write_text(
        f'{root}/Train/Rural/images_png/0.png {tmp_path}/bad.png\n')
    bad = S5LoveDADataset(ann_file=str(tmp_path / 'bad.txt'), pipeline=LOAD)
    with pytest.raises(ValueError, match=r'bad.png \(loveda\) has label ids '
                       r'\[8\] outside 0..6'):
        bad[0]
