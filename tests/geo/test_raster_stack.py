import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window

from s5_mm.geo.raster_stack import RasterStack, same_grid_crs


def write(path, data, crs='EPSG:32119', transform=None, nodata=None):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    transform = transform or from_origin(630534.0, 228114.0, 28.5, 28.5)
    with rasterio.open(path, 'w', driver='GTiff', width=data.shape[2],
                       height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data)
    return str(path)


def test_crs_tags_of_one_grid():
    assert same_grid_crs(CRS.from_epsg(32119), CRS.from_epsg(3358))
    assert not same_grid_crs(CRS.from_epsg(32119), CRS.from_epsg(2264))  # feet
    assert not same_grid_crs(CRS.from_epsg(32617), CRS.from_epsg(32616))
    assert not same_grid_crs(CRS.from_epsg(4326), None)
    assert same_grid_crs(None, None)


def test_stack_mixed_dtypes_and_nodata(tmp_path):
    a = write(tmp_path / 'a.tif', np.array([[1, -99999], [3, 4]], np.float32),
              nodata=-99999)
    b = write(tmp_path / 'b.tif', np.array([[-32768, 6], [7, 8]], np.int16),
              crs='EPSG:3358', nodata=-32768)
    with pytest.warns(UserWarning, match='datum'):
        stack = RasterStack([a, b])
    with stack:
        assert stack.count == 2 and stack.dtype == np.float32
        assert stack.nodata == -99999 and stack.band_nodata == (-99999, -32768)
        data, invalid = stack.read()
        # each band's own nodata becomes the stack's single nodata value
        assert data[1, 0, 0] == -99999 and data[0, 0, 1] == -99999
        assert invalid.tolist() == [[[False, True], [False, False]],
                                    [[True, False], [False, False]]]
        data, invalid = stack.read(Window(1, 1, 2, 2), boundless=True)
        assert data[0].tolist() == [[4, -99999], [-99999, -99999]]
        assert invalid[:, 0, 0].tolist() == [False, False]
        assert invalid[:, 1, :].all()


def test_stack_errors(tmp_path):
    a = write(tmp_path / 'a.tif', np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match='size mismatch.*b.tif'):
        RasterStack([a, write(tmp_path / 'b.tif', np.zeros((4, 6), np.uint8))])
    shifted = from_origin(630534.0 + 28.5, 228114.0, 28.5, 28.5)
    with pytest.raises(ValueError, match='geotransform mismatch.*c.tif'):
        RasterStack([a, write(tmp_path / 'c.tif', np.zeros((4, 5), np.uint8),
                              transform=shifted)])
    with pytest.raises(ValueError, match='CRS mismatch.*d.tif'):
        RasterStack([a, write(tmp_path / 'd.tif', np.zeros((4, 5), np.uint8),
                              crs='EPSG:2264')])
    rgb = write(tmp_path / 'rgb.tif', np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match='rgb.tif has 3 bands'):
        RasterStack([a, rgb])
    with pytest.raises(ValueError, match=r'\[4\] out of range 1..3'):
        RasterStack(rgb, bands=[1, 4])
    with pytest.raises(FileNotFoundError, match='missing.tif'):
        RasterStack([a, str(tmp_path / 'missing.tif')])
    bad = tmp_path / 'corrupt.tif'
    bad.write_bytes(b'II*\x00garbage')
    with pytest.raises(OSError, match='corrupt.tif'):
        RasterStack(str(bad))


def test_band_selection(shared_data):
    with RasterStack(shared_data / 'geotiff' / 'rmnp-rgb.tif',
                     bands=[3, 1]) as stack:
        data, _ = stack.read(Window(10, 20, 4, 3))
    with rasterio.open(shared_data / 'geotiff' / 'rmnp-rgb.tif') as src:
        ref = src.read([3, 1], window=Window(10, 20, 4, 3))
    np.testing.assert_array_equal(data, ref)
