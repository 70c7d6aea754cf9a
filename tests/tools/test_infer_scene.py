"""tools/infer_scene.py end to end: config + checkpoint -> GeoTIFFs."""
import pytest
import rasterio
from mmengine.config import Config

from s5_mm.testing import (load_tool, save_segmentor_checkpoint,
                           tiny_segmentor_cfg)

BANDS = (10, 20, 30, 40, 50, 70)


def tiny_config(in_channels, num_classes, bands=None):
    load = dict(type='LoadGeoImageFromFile')
    if bands:
        load['bands'] = bands
    return dict(
        default_scope='mmseg',
        custom_imports=dict(imports=['s5_mm'], allow_failed_imports=False),
        model=tiny_segmentor_cfg(in_channels, num_classes, mean=100.0,
                                 std=50.0),
        test_pipeline=[load, dict(type='PackSegInputs')])


@pytest.mark.parametrize('case', ['rgb_bands', 'landcover'])
def test_infer_scene_tool(shared_data, tmp_path, case):
    infer_scene = load_tool('infer_scene.py')
    if case == 'rgb_bands':
        cfg = tiny_config(2, 3, bands=[3, 1])
        scenes = [str(shared_data / 'geotiff' / 'OSBS_029.tif'),
                  str(shared_data / 'geotiff' / 'rmnp-rgb.tif')]
        stems = ['OSBS_029', 'rmnp-rgb']
    else:
        cfg = tiny_config(6, 4)
        d = shared_data / 'landcover_nc'
        scenes = [','.join(str(d / f'lsat7_2000_{b}.tif') for b in BANDS)]
        stems = ['lsat7_2000_10']
    cfg_path = tmp_path / 'tiny.py'
    Config(cfg).dump(str(cfg_path))
    ckpt = tmp_path / 'tiny.pth'
    save_segmentor_checkpoint(cfg['model'], ckpt)
    out = tmp_path / 'out'
    results = infer_scene.main(
        [str(cfg_path), str(ckpt), *scenes, '--out', str(out),
         '--tile-size', '128', '--stride', '96', '--batch-size', '2',
         '--merge', 'center', '--confidence', '--entropy', '--quicklook',
         '--no-progress', '--cfg-options', 'model.test_cfg.mode=whole'])
    assert len(results) == len(scenes)
    for scene, stem in zip(scenes, stems):
        first = scene.split(',')[0]
        pred = out / f'{stem}_pred.tif'
        for extra in ('_pred_confidence.tif', '_pred_entropy.tif',
                      '_pred.png'):
            assert (out / f'{stem}{extra}').is_file()
        with rasterio.open(first) as src, rasterio.open(pred) as p:
            assert p.crs == src.crs and p.transform == src.transform
            assert p.shape == src.shape
            cls = p.read(1)
        n = cfg['model']['decode_head']['num_classes']
        assert cls[cls != 255].max() < n


def test_geo_loading_args_from_config():
    infer_scene = load_tool('infer_scene.py')
    cfg = Config(tiny_config(2, 3, bands=[3, 1]))
    assert infer_scene.geo_loading_args(cfg) == dict(bands=[3, 1], nodata=None)
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadGeoImageFromFile', nodata=0)]))))
    assert infer_scene.geo_loading_args(cfg) == dict(bands=None, nodata=0)
    assert infer_scene.scene_arg('a.tif,b.tif') == ['a.tif', 'b.tif']
    assert infer_scene.scene_arg('a.tif') == 'a.tif'
