import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio import windows
from rasterio.transform import Affine
from rasterio.windows import Window

from s5_mm.datasets.transforms.geo_loading import (LoadGeoAnnotations,
                                                   LoadGeoImageFromFile)

BANDS = (10, 20, 30, 40, 50, 70)


def landcover(shared_data):
    d = shared_data / 'landcover_nc'
    bands = [str(d / f'lsat7_2000_{b}.tif') for b in BANDS]
    return bands, str(d / 'strata.tif')


def test_rgb_geotiff(shared_data):
    path = str(shared_data / 'geotiff' / 'rmnp-rgb.tif')
    res = LoadGeoImageFromFile()(dict(img_path=path))
    with rasterio.open(path) as src:
        ref = src.read().transpose(1, 2, 0).astype(np.float32)
        crs, transform = src.crs, src.transform
    img = res['img']
    assert img.shape == (373, 485, 3) and img.dtype == np.float32
    invalid = (ref == 255).any(axis=2)
    assert np.array_equal(res['valid_mask'], ~invalid)
    assert invalid.sum() == 11291
    # band values kept, nodata (255) zeroed per band
    np.testing.assert_array_equal(img, np.where(ref == 255, 0, ref))
    assert res['img_shape'] == res['ori_shape'] == (373, 485)
    assert CRS.from_wkt(res['geo_crs']) == crs
    assert Affine(*res['geo_transform']) == transform
    assert res['nodata'] == (255.0, 255.0, 255.0)


def test_band_selection_dtype_and_window(shared_data):
    path = str(shared_data / 'geotiff' / 'OSBS_029.tif')
    res = LoadGeoImageFromFile(bands=[3, 1], to_float32=False)(
        dict(img_path=path, geo_window=(100, 50, 64, 32)))
    with rasterio.open(path) as src:
        ref = src.read([3, 1], window=((50, 82), (100, 164)))
        transform = src.transform
    assert res['img'].dtype == np.uint8 and res['img'].shape == (32, 64, 2)
    np.testing.assert_array_equal(res['img'], np.where(ref == 255, 0, ref)
                                  .transpose(1, 2, 0))
    shifted = transform @ Affine.translation(100, 50)
    assert Affine(*res['geo_transform']) == shifted


def test_multifile_stack_and_labels(shared_data):
    files, strata = landcover(shared_data)
    res = LoadGeoImageFromFile(expected_bands=6)(
        dict(img_path=files, seg_map_path=strata))
    img = res['img']
    assert img.shape == (264, 489, 6)
    assert (~res['valid_mask']).sum() == 44874  # band 70's larger border
    with rasterio.open(files[5]) as src:
        b70 = src.read(1)
    np.testing.assert_array_equal(img[..., 5][b70 != -32768],
                                  b70[b70 != -32768].astype(np.float32))
    assert (img[..., 5][b70 == -32768] == 0).all()
    res = LoadGeoAnnotations(label_offset=-1)(res)
    gt = res['gt_seg_map']
    with rasterio.open(strata) as src:
        lab = src.read(1)
    assert gt.dtype == np.uint8 and res['seg_fields'] == ['gt_seg_map']
    ok = res['valid_mask'] & (lab != -99999)
    np.testing.assert_array_equal(gt[ok], lab[ok].astype(np.uint8) - 1)
    assert (gt[~ok] == 255).all()
    assert set(np.unique(gt[ok])) <= set(range(7))


def test_label_map_and_reduce_zero_label(tmp_path):
    path = tmp_path / 'lab.tif'
    with rasterio.open(path, 'w', driver='GTiff', width=3, height=1, count=1,
                       dtype='uint8', nodata=9) as dst:
        dst.write(np.array([[[0, 2, 9]]], np.uint8))
    res = LoadGeoAnnotations()(dict(seg_map_path=str(path),
                                    reduce_zero_label=True, label_map={1: 0}))
    assert res['gt_seg_map'].tolist() == [[255, 0, 255]]


def test_optional_labels_for_image_only_inference(shared_data):
    """optional=True: a sample without seg_map_path (mmseg.apis) passes
    without labels; by default the missing key is named."""
    files, strata = landcover(shared_data)
    res = LoadGeoImageFromFile()(dict(img_path=files))
    out = LoadGeoAnnotations(label_offset=-1, optional=True)(dict(res))
    assert 'gt_seg_map' not in out and 'seg_fields' not in out
    with pytest.raises(KeyError, match="no 'seg_map_path'.*lsat7_2000_10"
                       r".*optional=True"):
        LoadGeoAnnotations(label_offset=-1)(dict(res))
    labelled = LoadGeoAnnotations(label_offset=-1, optional=True)(
        dict(res, seg_map_path=strata))
    assert labelled['gt_seg_map'].shape == (264, 489)


def test_errors_name_files(shared_data, tmp_path):
    files, strata = landcover(shared_data)
    with pytest.raises(ValueError, match='expected 4 bands.*lsat7_2000_10'):
        LoadGeoImageFromFile(expected_bands=4)(dict(img_path=files))
    with pytest.raises(FileNotFoundError, match='nope.tif'):
        LoadGeoImageFromFile()(dict(img_path=str(tmp_path / 'nope.tif')))
    rgb = str(shared_data / 'geotiff' / 'OSBS_029.tif')
    res = LoadGeoImageFromFile()(dict(img_path=rgb))
    res['seg_map_path'] = strata
    with pytest.raises(ValueError, match='strata.tif.*OSBS_029.tif'):
        LoadGeoAnnotations()(res)
    frac = tmp_path / 'frac.tif'
    with rasterio.open(frac, 'w', driver='GTiff', width=2, height=1, count=1,
                       dtype='float32') as dst:
        dst.write(np.array([[[1.0, 1.5]]], np.float32))
    with pytest.raises(ValueError, match='frac.tif.*non-integer'):
        LoadGeoAnnotations()(dict(seg_map_path=str(frac)))


def test_pipeline_to_packed_inputs(shared_data):
    from mmcv.transforms import Compose
    from mmseg.registry import TRANSFORMS  # noqa: F401
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    files, strata = landcover(shared_data)
    pipe = Compose([
        dict(type='LoadGeoImageFromFile', expected_bands=6),
        dict(type='LoadGeoAnnotations', label_offset=-1),
        dict(type='GeoRandomCrop', crop_size=(64, 64)),
        dict(type='PackSegInputs',
             meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                        'geo_crs', 'geo_transform')),
    ])
    np.random.seed(0)
    out = pipe(dict(img_path=files, seg_map_path=strata, seg_fields=[]))
    assert tuple(out['inputs'].shape) == (6, 64, 64)
    gt = out['data_samples'].gt_sem_seg.data[0].numpy()
    assert gt.shape == (64, 64)
    meta = out['data_samples'].metainfo
    assert 'geo_crs' in meta
    # find the crop in the scene by its pixels, then check its transform
    crop = out['inputs'].numpy().transpose(1, 2, 0)
    full = LoadGeoImageFromFile()(dict(img_path=files))['img']
    hits = [(y - 32, x - 32)
            for y, x in np.argwhere((full == crop[32, 32]).all(-1))
            if y >= 32 and x >= 32
            and np.array_equal(full[y - 32:y + 32, x - 32:x + 32], crop)]
    assert len(hits) == 1
    y0, x0 = (int(v) for v in hits[0])
    with rasterio.open(files[0]) as src:
        expected = windows.transform(Window(x0, y0, 64, 64), src.transform)
    assert Affine(*meta['geo_transform']) == expected


def label_ignore_reference(files, strata):
    """Ignored labels under each valid_mask rule, straight from rasterio."""
    nodata = []
    for f in files:
        with rasterio.open(f) as src:
            nodata.append(src.read(1) == src.nodata)
    nodata = np.stack(nodata)
    with rasterio.open(strata) as src:
        lab = src.read(1)
        lab_bad = (lab == src.nodata) | (lab - 1 < 0)
    return dict(any=lab_bad | nodata.any(0), all=lab_bad | nodata.all(0))


@pytest.mark.parametrize('mode', ['any', 'all'])
def test_valid_mask_rule_sets_ignored_labels(shared_data, mode):
    files, strata = landcover(shared_data)
    ref = label_ignore_reference(files, strata)[mode]
    res = LoadGeoImageFromFile(valid_mask=mode)(
        dict(img_path=files, seg_map_path=strata))
    res = LoadGeoAnnotations(label_offset=-1)(res)
    ignored = res['gt_seg_map'] == 255
    np.testing.assert_array_equal(ignored, ref)
    # measured on this scene (264 x 489 px): 'any' takes band 70's wider
    # border (34.76 %), 'all' only the border of bands 10-50 (13.98 %)
    count = dict(any=44874, all=18043)[mode]
    assert ignored.sum() == count
    assert ignored.mean() == pytest.approx(count / (264 * 489))
    with rasterio.open(strata) as src:
        lab = src.read(1)
    keep = ~ignored
    np.testing.assert_array_equal(res['gt_seg_map'][keep],
                                  lab[keep].astype(np.uint8) - 1)


def test_valid_mask_rule_is_checked():
    with pytest.raises(ValueError, match="valid_mask must be one of.*'some'"):
        LoadGeoImageFromFile(valid_mask='some')
