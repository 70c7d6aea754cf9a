import os

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from s5_mm.geo.tiling import format_coord, tile_raster
from s5_mm.testing import load_tool

BANDS = (10, 20, 30, 40, 50, 70)


def test_reproduces_tiling_oracle(shared_data, tmp_path):
    oracle = shared_data / 'tiling_oracle'
    tiles = tile_raster(oracle / 'sample_geotiff.tif', tmp_path, 90)
    expected = sorted(os.listdir(oracle / 'rastertile_test_expected'))
    assert len(expected) == 100
    assert sorted(os.path.basename(t.path) for t in tiles) == expected
    for name in expected:
        ref_path = oracle / 'rastertile_test_expected' / name
        with rasterio.open(ref_path) as ref, \
                rasterio.open(tmp_path / name) as got:
            np.testing.assert_array_equal(got.read(), ref.read())
            assert got.transform == ref.transform  # exact geotransform
            assert got.crs == ref.crs and got.nodata == ref.nodata
            assert got.dtypes == ref.dtypes and got.shape == ref.shape


def test_format_coord():
    assert format_coord(733601.0) == '733601'
    assert format_coord(3725139.25) == '3725139.25'
    assert format_coord(-106.0566005603556) == '-106.0566006'


def test_multiband_stack_pad_skip_and_label_windows(shared_data, tmp_path):
    d = shared_data / 'landcover_nc'
    files = [str(d / f'lsat7_2000_{b}.tif') for b in BANDS]
    tiles = tile_raster(files, tmp_path / 'img', 128, 96, stem='scene',
                        compress='deflate')
    # 489 x 264 with tile 128, stride 96: 5 x 3 windows, the last padded;
    # none is all-nodata
    assert len(tiles) == 15
    assert {t.window.width for t in tiles} == {128}
    with rasterio.open(files[0]) as src:
        b10 = src.read(1)
        src_transform = src.transform
    assert tiles[6].valid_fraction == 1.0  # window (96, 96) is all valid
    assert 0 < tiles[0].valid_fraction < 1
    for t in tiles:
        # the share of pixels valid in every band of the tile written
        with rasterio.open(t.path) as tif:
            assert t.valid_fraction == pytest.approx(
                (tif.read() != tif.nodata).all(0).mean(), abs=1e-12)
        with rasterio.open(t.path) as tif:
            assert tif.count == 6 and tif.dtypes[0] == 'float32'
            assert tif.nodata == -99999
            assert tif.profile['compress'] == 'deflate'
            assert tif.transform == src_transform @ \
                rasterio.Affine.translation(t.window.col_off, t.window.row_off)
            a = tif.read()
        r, c = t.window.row_off, t.window.col_off
        inside = b10[r:r + 128, c:c + 128]
        np.testing.assert_array_equal(a[0, :inside.shape[0], :inside.shape[1]],
                                      inside)
        assert (a[:, inside.shape[0]:, :] == -99999).all()  # padding is nodata
        assert (a[:, :, inside.shape[1]:] == -99999).all()
        assert not (a[5] == -32768).any()  # band 70's nodata was remapped
    last = max(tiles, key=lambda t: (t.window.row_off, t.window.col_off))
    assert (last.window.col_off, last.window.row_off) == (384, 192)
    labels = tile_raster(d / 'strata.tif', tmp_path / 'ann', 128,
                         windows=[t.window for t in tiles], stem='scene')
    assert [os.path.basename(t.path) for t in labels] == \
        [os.path.basename(t.path) for t in tiles]


def test_explicit_windows_written_without_skipping(tmp_path):
    path = tmp_path / 'zeros.tif'
    with rasterio.open(path, 'w', driver='GTiff', width=8, height=8, count=1,
                       dtype='uint8', nodata=0,
                       transform=rasterio.transform.from_origin(0, 8, 1, 1),
                       crs='EPSG:32616') as dst:
        dst.write(np.zeros((1, 8, 8), np.uint8))
    assert tile_raster(path, tmp_path / 'a', 4) == []
    with rasterio.open(path, 'r+') as dst:
        dst.write(np.full((1, 3, 3), 7, np.uint8), window=Window(5, 1, 3, 3))
    kept = tile_raster(path, tmp_path / 'k', 4)
    assert [(t.window.col_off, t.window.row_off) for t in kept] == [(4, 0)]
    assert kept[0].valid_fraction == 9 / 16
    assert len(tile_raster(path, tmp_path / 'k2', 4, skip_nodata=False)) == 4
    tiles = tile_raster(path, tmp_path / 'b', 4, windows=[Window(4, 0, 4, 4)])
    assert [(t.x, t.y) for t in tiles] == [(4.0, 8.0)]
    with pytest.raises(ValueError, match='repeats'):
        tile_raster(path, tmp_path / 'c', 4, windows=[Window(0, 0, 4, 4)] * 2)


def test_tile_scene_tool(shared_data, tmp_path):
    tile_scene = load_tool('tile_scene.py')
    d = shared_data / 'landcover_nc'
    scene = ','.join(str(d / f'lsat7_2000_{b}.tif') for b in BANDS)
    tiles = tile_scene.main([scene, '--out', str(tmp_path), '--tile-size',
                             '100', '--label', str(d / 'strata.tif')])
    imgs = sorted(os.listdir(tmp_path / 'img'))
    assert imgs == sorted(os.listdir(tmp_path / 'ann'))
    assert len(imgs) == len(tiles)
    with rasterio.open(tmp_path / 'ann' / imgs[0]) as ann:
        assert ann.count == 1 and ann.nodata == -99999
