import numpy as np
import pytest
import rasterio

from s5_mm.geo.stats import compute_band_stats
from s5_mm.testing import load_tool


def _bands(shared_data):
    return [str(shared_data / 'landcover_nc' / f'lsat7_2000_{b}.tif')
            for b in (10, 20, 30, 40, 50, 70)]


def test_stats_skip_nodata(shared_data):
    files = _bands(shared_data)
    mean, std, count = compute_band_stats([files], block=100)
    for i, f in enumerate(files):
        with rasterio.open(f) as src:
            a = src.read(1).astype(np.float64)
            v = a[a != src.nodata]
        assert count[i] == v.size
        assert mean[i] == pytest.approx(v.mean(), rel=1e-9)
        assert std[i] == pytest.approx(v.std(), rel=1e-9)
    assert count[0] == 264 * 489 - 18042 and count[5] == 264 * 489 - 44874


def test_stats_over_scenes_and_cli(shared_data, capsys):
    band_stats = load_tool('band_stats.py')
    rgb = str(shared_data / 'geotiff' / 'OSBS_029.tif')
    mean, std, _ = band_stats.main([rgb, rgb, '--bands', '3', '1'])
    with rasterio.open(rgb) as src:
        a = src.read(3).astype(np.float64)
    v = a[a != 255]
    assert mean[0] == pytest.approx(v.mean())
    assert std[0] == pytest.approx(v.std())
    out = capsys.readouterr().out
    assert 'mean=[' in out and 'bgr_to_rgb=False' in out
    with pytest.raises(ValueError, match='bands'):
        compute_band_stats([rgb, _bands(shared_data)])
