"""UnlabeledImageDataset: folders, selection lists, clear errors."""
import cv2
import numpy as np
import pytest

import s5_mm  # noqa: F401
from s5_mm.datasets.unlabeled import UnlabeledImageDataset

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'


def write_png(path, h=8, w=6, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


def infos(ds):
    return [ds.get_data_info(i) for i in range(len(ds))]


def test_folder_recursive_sorted(tmp_path):
    write_png(tmp_path / 'imgs' / 'b.png')
    write_png(tmp_path / 'imgs' / 'sub' / 'a.JPG')
    (tmp_path / 'imgs' / 'notes.txt').write_text('x')
    ds = UnlabeledImageDataset(data_root=str(tmp_path),
                               data_prefix=dict(img_path='imgs'),
                               pipeline=[])
    names = [d['img_path'][len(str(tmp_path)) + 1:] for d in infos(ds)]
    assert names == ['imgs/b.png', 'imgs/sub/a.JPG']
    assert all(d['seg_map_path'] is None for d in infos(ds))


def test_selection_list_with_scores(tmp_path):
    write_png(tmp_path / 'pool' / 'x1.png')
    write_png(tmp_path / 'pool' / 'x2.png')
    absolute = tmp_path / 'elsewhere' / 'x3.png'
    write_png(absolute)
    (tmp_path / 'sel.txt').write_text(
        '# path entropy cluster\n'
        'x1.png 0.125 3\n'
        '\n'
        f'x2.png,0.5,1\n'
        f'{absolute}\n')
    ds = UnlabeledImageDataset(
        data_root=str(tmp_path), ann_file='sel.txt',
        data_prefix=dict(img_path='pool'), check_files=True,
        pipeline=[dict(type='LoadImageFromFile')])
    assert len(ds) == 3
    assert infos(ds)[0]['img_path'] == str(tmp_path / 'pool' / 'x1.png')
    assert infos(ds)[0]['scores'] == [0.125, 3.0]
    assert infos(ds)[1]['scores'] == [0.5, 1.0]
    assert infos(ds)[2]['img_path'] == str(absolute)
    assert infos(ds)[2]['scores'] == []
    assert ds[0]['img'].shape == (8, 6, 3)


def test_list_relative_to_its_folder(tmp_path):
    write_png(tmp_path / 'l' / 'a.png')
    (tmp_path / 'l' / 'list.txt').write_text('a.png\n')
    ds = UnlabeledImageDataset(ann_file=str(tmp_path / 'l' / 'list.txt'),
                               pipeline=[])
    assert infos(ds)[0]['img_path'] == str(tmp_path / 'l' / 'a.png')


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        UnlabeledImageDataset(data_prefix=dict(img_path=str(tmp_path /
                                                            'nowhere')))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no images'):
        UnlabeledImageDataset(data_prefix=dict(img_path=str(tmp_path /
                                                            'empty')))
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        UnlabeledImageDataset(ann_file=str(tmp_path / 'missing.txt'))
    (tmp_path / 'blank.txt').write_text('# only a header\n\n')
    with pytest.raises(ValueError, match='lists no images'):
        UnlabeledImageDataset(ann_file=str(tmp_path / 'blank.txt'))
    (tmp_path / 'bad.txt').write_text('a.png high\n')
    with pytest.raises(ValueError, match='bad.txt:1'):
        UnlabeledImageDataset(ann_file=str(tmp_path / 'bad.txt'))
    (tmp_path / 'gone.txt').write_text('gone.png\n')
    with pytest.raises(FileNotFoundError, match='gone.png'):
        UnlabeledImageDataset(ann_file=str(tmp_path / 'gone.txt'),
                              check_files=True)


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / 'broken.png').write_bytes(b'not an image')
    ds = UnlabeledImageDataset(data_prefix=dict(img_path=str(tmp_path)),
                               pipeline=[dict(type='LoadImageFromFile')])
    with pytest.raises(Exception, match='broken.png'):
        ds.prepare_data(0)


def test_geotiff_multiband_through_geo_loader(tmp_path):
    rasterio = pytest.importorskip('rasterio')
    path = tmp_path / 'ms.tif'
    data = np.arange(6 * 5 * 7, dtype=np.float32).reshape(6, 5, 7)
    data[:, 0, 0] = -9999
    with rasterio.open(path, 'w', driver='GTiff', height=5, width=7,
                       count=6, dtype='float32', nodata=-9999) as dst:
        dst.write(data)
    ds = UnlabeledImageDataset(
        data_prefix=dict(img_path=str(tmp_path)),
        pipeline=[dict(type='LoadGeoImageFromFile', expected_bands=6),
                  dict(type='AddPaddingMask')])
    out = ds[0]
    assert out['img'].shape == (5, 7, 6)
    assert out['gt_seg_map'][0, 0] == 255 and out['gt_seg_map'].sum() == 255
