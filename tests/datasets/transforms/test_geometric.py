"""Geometric transforms: pixels and seg maps move together, and
``geo_transform`` follows them (checked against rasterio on real scenes)."""
import numpy as np
import pytest
import rasterio
from mmengine.dataset import Compose
from rasterio.transform import Affine, array_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

import s5_mm  # noqa: F401
from s5_mm.datasets.transforms.geo_loading import LoadGeoImageFromFile
from s5_mm.datasets.transforms.geometric import (CropWindow, GeoRandomCrop,
                                                 GeoRandomFlip, RandomRescale,
                                                 RandomRot90)

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'
BANDS = (10, 20, 30, 40, 50, 70)


def landcover_files(shared_data):
    d = shared_data / 'landcover_nc'
    return [str(d / f'lsat7_2000_{b}.tif') for b in BANDS]


def index_image(h, w):
    """float32 image whose bands hold each pixel's own row and column."""
    rows, cols = np.mgrid[:h, :w]
    return np.stack([rows, cols], -1).astype(np.float32)


def centres(transform, rows, cols):
    """Map coordinates of pixel centres, computed by rasterio."""
    xs, ys = rasterio.transform.xy(Affine(*transform), rows, cols,
                                   offset='center')
    return np.asarray(xs), np.asarray(ys)


def assert_pixels_keep_their_map_position(before, after):
    """Every output pixel lies where the input pixel it came from lay
    (pixel identity carried by ``index_image`` bands)."""
    img = after['img']
    h, w = img.shape[:2]
    rows, cols = np.mgrid[:h, :w]
    src_r = img[..., 0].astype(int).ravel()
    src_c = img[..., 1].astype(int).ravel()
    x1, y1 = centres(after['geo_transform'], rows.ravel(), cols.ravel())
    x0, y0 = centres(before, src_r, src_c)
    np.testing.assert_allclose(x1, x0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y1, y0, rtol=0, atol=1e-6)


def test_geo_random_crop_matches_rasterio_window_transform(shared_data):
    files = landcover_files(shared_data)
    with rasterio.open(files[0]) as src:
        src_transform = src.transform
    np.random.seed(3)
    crop = GeoRandomCrop(crop_size=(64, 96))
    seen = set()
    for _ in range(5):
        res = LoadGeoImageFromFile()(dict(img_path=files))
        h, w = res['img'].shape[:2]
        # the crop's offset, read off a map carried as a seg field
        res['pos'] = np.arange(h * w, dtype=np.int64).reshape(h, w)
        res['seg_fields'] = ['pos']
        res = crop(res)
        y0, x0 = divmod(int(res['pos'][0, 0]), w)
        seen.add((x0, y0))
        win = Window(x0, y0, 96, 64)
        assert Affine(*res['geo_transform']) == window_transform(
            win, src_transform)
        assert '_geo_crop_bbox' not in res
        # and the pixels are rasterio's pixels of that window
        with rasterio.open(files[2]) as src:
            band = src.read(1, window=win)
        ok = band != src.nodata
        np.testing.assert_array_equal(res['img'][..., 2][ok], band[ok])
    assert len(seen) == 5  # random offsets, not the origin each time


def test_geo_random_crop_larger_than_image():
    t = (30.0, 0.0, 1000.0, 0.0, -30.0, 5000.0)
    res = GeoRandomCrop(crop_size=(8, 50))(
        dict(img=index_image(10, 20), geo_transform=t, seg_fields=[]))
    h, w = res['img'].shape[:2]
    assert (h, w) == (8, 20)
    y0 = int(res['img'][0, 0, 0])
    assert Affine(*res['geo_transform']) == window_transform(
        Window(0, y0, 20, 8), Affine(*t))


def test_crop_window_shifts_geo_transform(shared_data):
    path = str(shared_data / 'geotiff' / 'OSBS_029.tif')
    res = LoadGeoImageFromFile()(dict(img_path=path,
                                      crop_window=(40, 100, 140, 164)))
    res = CropWindow()(res)
    with rasterio.open(path) as src:
        expected = window_transform(Window(40, 100, 100, 64), src.transform)
        ref = src.read(window=Window(40, 100, 100, 64))
    assert res['img'].shape == (64, 100, 3)
    assert Affine(*res['geo_transform']) == expected
    np.testing.assert_array_equal(
        res['img'], np.where(ref == 255, 0, ref).transpose(1, 2, 0))


def test_crop_window_passthrough_and_errors():
    res = CropWindow()(dict(img=np.zeros((5, 5, 3))))
    assert res['img'].shape == (5, 5, 3) and 'geo_transform' not in res
    with pytest.raises(ValueError, match='exceeds image a.png'):
        CropWindow()(dict(img=np.zeros((5, 5, 3)), img_path='a.png',
                          crop_window=(0, 0, 6, 5)))


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_geo_random_flip(shared_data, direction):
    path = str(shared_data / 'geotiff' / 'rmnp-rgb.tif')
    loaded = LoadGeoImageFromFile()(dict(img_path=path))
    t0 = loaded['geo_transform']
    h, w = loaded['img'].shape[:2]
    seg = (np.arange(h * w) % 7).reshape(h, w).astype(np.uint8)
    res = GeoRandomFlip(prob=1.0, direction=direction)(
        dict(loaded, img=index_image(h, w), gt_seg_map=seg.copy(),
             seg_fields=['gt_seg_map']))
    assert res['flip'] and res['flip_direction'] == direction
    assert_pixels_keep_their_map_position(t0, res)
    # same extent on the map, axis order reversed
    assert sorted(array_bounds(h, w, Affine(*res['geo_transform']))) == \
        pytest.approx(sorted(array_bounds(h, w, Affine(*t0))))
    # the flipped labels are the labels at the source pixels
    r = res['img'][..., 0].astype(int)
    c = res['img'][..., 1].astype(int)
    np.testing.assert_array_equal(res['gt_seg_map'], seg[r, c])


def test_geo_random_flip_same_draws_as_mmseg_flip():
    from mmseg.datasets.transforms import RandomFlip
    img = index_image(6, 9)
    t = (2.0, 0.0, 10.0, 0.0, -2.0, 50.0)
    for seed in range(6):
        np.random.seed(seed)
        a = RandomFlip(prob=0.5, direction=['horizontal', 'vertical'])(
            dict(img=img.copy()))
        np.random.seed(seed)
        b = GeoRandomFlip(prob=0.5, direction=['horizontal', 'vertical'])(
            dict(img=img.copy(), geo_transform=t))
        assert np.array_equal(a['img'], b['img'])
        assert a['flip_direction'] == b['flip_direction']
        if not b['flip']:
            assert b['geo_transform'] == t


def test_random_rot90_updates_geo_transform(shared_data):
    files = landcover_files(shared_data)
    t0 = LoadGeoImageFromFile()(dict(img_path=files))['geo_transform']
    h, w = 264, 489
    seen = set()
    np.random.seed(0)
    for _ in range(12):
        res = RandomRot90(prob=1.0)(dict(img=index_image(h, w),
                                         geo_transform=t0))
        seen.add(res['rot90_k'])
        assert res['img'].shape[:2] == ((w, h) if res['rot90_k'] % 2 else
                                        (h, w))
        assert_pixels_keep_their_map_position(t0, res)
    assert seen == {1, 2, 3}
    # no rotation drawn: untouched
    np.random.seed(0)
    res = RandomRot90(prob=0.0)(dict(img=index_image(4, 5), geo_transform=t0))
    assert res['geo_transform'] == t0


def test_random_rescale_updates_geo_transform(shared_data):
    path = str(shared_data / 'geotiff' / 'OSBS_029.tif')
    res = LoadGeoImageFromFile()(dict(img_path=path))
    t0 = res['geo_transform']
    res = RandomRescale(ratio_range=(0.37, 0.37))(res)
    h, w = res['img'].shape[:2]
    assert (h, w) == (148, 148)
    t1 = Affine(*res['geo_transform'])
    # same extent on the map, pixel size 400 / 148 times the source's
    np.testing.assert_allclose(array_bounds(h, w, t1),
                               array_bounds(400, 400, Affine(*t0)),
                               rtol=0, atol=1e-6)
    assert t1.a == pytest.approx(Affine(*t0).a * 400 / 148)
    assert t1.e == pytest.approx(Affine(*t0).e * 400 / 148)


def test_random_rescale_multiband_and_labels():
    img = np.random.rand(10, 20, 6).astype(np.float32)
    seg = np.zeros((10, 20), np.uint8)
    seg[:, 10:] = 3
    res = RandomRescale(ratio_range=(2.0, 2.0))(
        dict(img=img, gt_seg_map=seg, seg_fields=['gt_seg_map']))
    assert res['img'].shape == (20, 40, 6)
    assert res['img_shape'] == (20, 40)
    assert set(np.unique(res['gt_seg_map'])) == {0, 3}
    assert (res['gt_seg_map'][:, 20:] == 3).all()
    assert 'geo_transform' not in res
    one = RandomRescale(ratio_range=(0.5, 0.5))(
        dict(img=np.ones((8, 8, 1), np.float32)))
    assert one['img'].shape == (4, 4, 1)
    np.random.seed(0)
    sizes = {RandomRescale()(dict(img=np.zeros((100, 100, 3), np.uint8)))
             ['img'].shape[0] for _ in range(40)}
    assert min(sizes) >= 50 and max(sizes) <= 200 and len(sizes) > 10


def test_random_rot90_rotates_image_and_labels_together():
    img = np.arange(2 * 3 * 2).reshape(2, 3, 2).astype(np.float32)
    seg = np.arange(6).reshape(2, 3).astype(np.uint8)
    np.random.seed(1)
    res = RandomRot90(prob=1.0)(
        dict(img=img.copy(), gt_seg_map=seg.copy(),
             seg_fields=['gt_seg_map']))
    k = res['rot90_k']
    assert k in (1, 2, 3)
    assert np.array_equal(res['img'], np.rot90(img, k))
    assert np.array_equal(res['gt_seg_map'], np.rot90(seg, k))
    assert res['img_shape'] == res['img'].shape[:2]


def test_geo_pipeline_packs_the_right_transform(shared_data):
    """Loader -> crop -> flips -> rot90 -> pack: the packed transform puts
    each packed pixel where rasterio puts the scene pixel it shows."""
    files = landcover_files(shared_data)
    pipe = Compose([
        dict(type='LoadGeoImageFromFile', expected_bands=6),
        dict(type='GeoRandomCrop', crop_size=(40, 40)),
        dict(type='GeoRandomFlip', prob=0.5, direction='horizontal'),
        dict(type='GeoRandomFlip', prob=0.5, direction='vertical'),
        dict(type='RandomRot90', prob=0.5),
        dict(type='PackSegInputs',
             meta_keys=('img_path', 'img_shape', 'geo_transform')),
    ])
    full = LoadGeoImageFromFile()(dict(img_path=files))
    t0 = Affine(*full['geo_transform'])
    np.random.seed(5)
    for _ in range(6):
        out = pipe(dict(img_path=files))
        img = out['inputs'].numpy().transpose(1, 2, 0)
        t = Affine(*out['data_samples'].metainfo['geo_transform'])
        rows, cols = np.mgrid[:40, :40]
        xs, ys = rasterio.transform.xy(t, rows.ravel(), cols.ravel())
        r, c = rasterio.transform.rowcol(t0, xs, ys)
        np.testing.assert_array_equal(
            img.reshape(-1, 6), full['img'][np.asarray(r), np.asarray(c)])
