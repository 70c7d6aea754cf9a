"""GeoSegVisualizationHook: multi-file 6-band scenes drawn as a stretched
false-colour composite, at val and test time."""
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from s5_mm.engine.hooks import GeoSegVisualizationHook

BANDS = (10, 20, 30, 40, 50, 70)


def stretched_reference(files, rgb_bands):
    """Percentile stretch of the chosen bands over pixels valid in every
    band, straight from rasterio."""
    bands, invalid = [], []
    for f in files:
        with rasterio.open(f) as src:
            b = src.read(1).astype(np.float32)
            invalid.append(b == src.nodata)
            bands.append(b)
    valid = ~np.any(invalid, axis=0)
    out = np.zeros(valid.shape + (3, ), np.uint8)
    for c, b in enumerate(rgb_bands):
        lo, hi = np.percentile(bands[b][valid], (2, 98))
        out[..., c] = np.clip((bands[b] - lo) * (255.0 / (hi - lo)), 0, 255)
    out[~valid] = 0
    return out


@pytest.fixture
def visualizer(tmp_path):
    vis = SegLocalVisualizer.get_instance(
        f'geo_vis_{tmp_path.name}', save_dir=str(tmp_path),
        vis_backends=[dict(type='LocalVisBackend')])
    vis.dataset_meta = dict(classes=[f'c{i}' for i in range(7)],
                            palette=[[30 * i, 200 - 20 * i, 9 * i]
                                     for i in range(7)])
    return vis


def sample(files, shape):
    s = SegDataSample(metainfo=dict(img_path=files))
    s.pred_sem_seg = PixelData(data=torch.zeros((1, ) + shape,
                                                dtype=torch.int64))
    return s


def test_hook_draws_false_colour_composite(shared_data, tmp_path, visualizer,
                                           monkeypatch):
    d = shared_data / 'landcover_nc'
    files = [str(d / f'lsat7_2000_{b}.tif') for b in BANDS]
    hook = GeoSegVisualizationHook(rgb_bands=(3, 2, 1), draw=True,
                                   interval=2)
    drawn = []
    real = visualizer.add_datasample

    def capture(name, image, **kw):
        drawn.append((name, image, kw['step']))
        real(name, image, **kw)

    monkeypatch.setattr(visualizer, 'add_datasample', capture)
    outputs = [sample(files, (264, 489))]
    runner = SimpleNamespace(iter=10)
    hook.after_val_iter(runner, 0, {}, outputs)  # (0 + 1) % 2: not drawn
    assert drawn == []
    hook.after_val_iter(runner, 3, {}, outputs)
    hook.after_test_iter(runner, 0, {}, outputs)
    assert [(n, s) for n, _, s in drawn] == [
        ('val_lsat7_2000_10.tif', 10), ('lsat7_2000_10.tif', 1)]
    ref = stretched_reference(files, (3, 2, 1))
    for _, image, _ in drawn:
        assert image.shape == (264, 489, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(image, ref)
    saved = sorted(p.name for p in tmp_path.rglob('*.png'))
    assert saved == ['lsat7_2000_10.tif_1.png', 'val_lsat7_2000_10.tif_10.png']


def test_hook_draw_false_draws_nothing(shared_data, visualizer, monkeypatch):
    path = str(shared_data / 'geotiff' / 'OSBS_029.tif')
    with pytest.warns(UserWarning, match='draw is False'):
        hook = GeoSegVisualizationHook(draw=False)
    monkeypatch.setattr(visualizer, 'add_datasample',
                        lambda *a, **k: pytest.fail('drew'))
    hook.after_val_iter(SimpleNamespace(iter=0), 0, {},
                        [sample(path, (400, 400))])
    hook.after_test_iter(None, 0, {}, [sample(path, (400, 400))])
