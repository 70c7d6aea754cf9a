"""tools/infer_scene.py end to end: config + checkpoint -> GeoTIFFs."""
import numpy as np
import pytest
import rasterio
import torch
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


def whole_image_logits(model_cfg, ckpt, scene, bands):
    """The checkpoint's logits of the whole scene (the config's model, the
    geo loader, no tiling) and the scene's valid mask."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from s5_mm.datasets.transforms.geo_loading import LoadGeoImageFromFile
    init_default_scope('mmseg')
    model = MODELS.build(model_cfg)
    model.load_state_dict(torch.load(ckpt, map_location='cpu',
                                     weights_only=True)['state_dict'])
    model.eval()
    paths = scene.split(',')
    loaded = LoadGeoImageFromFile(bands=bands)(
        dict(img_path=paths if len(paths) > 1 else paths[0]))
    x = torch.from_numpy(np.ascontiguousarray(
        loaded['img'].transpose(2, 0, 1)))
    h, w = x.shape[1:]
    data = model.data_preprocessor(dict(inputs=[x]), False)
    meta = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))]
    with torch.no_grad():
        logits = model.encode_decode(data['inputs'], meta)[0].numpy()
    return logits, loaded['valid_mask']


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
        with rasterio.open(first) as src, rasterio.open(pred) as p, \
                rasterio.open(out / f'{stem}_pred_confidence.tif') as c:
            assert p.crs == src.crs and p.transform == src.transform
            assert p.shape == src.shape
            cls, conf = p.read(1), c.read(1)
        # center merge (overlap margin 16 px > receptive-field radius 4)
        # equals whole-image inference, up to float32 rounding: classes
        # compared where the top-2 logit gap exceeds 1e-4
        logits, valid = whole_image_logits(cfg['model'], ckpt, scene,
                                           cfg['test_pipeline'][0].get(
                                               'bands'))
        assert np.array_equal(cls == 255, ~valid)
        top2 = np.sort(logits, axis=0)[-2:]
        decided = valid & (top2[1] - top2[0] > 1e-4)
        assert decided.sum() > 0.99 * valid.sum()
        np.testing.assert_array_equal(cls[decided],
                                      logits.argmax(0)[decided])
        z = np.exp(logits - logits.max(0))
        np.testing.assert_allclose(conf[valid], (z / z.sum(0)).max(0)[valid],
                                   atol=1e-5)


def test_geo_loading_args_from_config():
    infer_scene = load_tool('infer_scene.py')
    cfg = Config(tiny_config(2, 3, bands=[3, 1]))
    assert infer_scene.geo_loading_args(cfg) == dict(bands=[3, 1], nodata=None)
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadGeoImageFromFile', nodata=0)]))))
    assert infer_scene.geo_loading_args(cfg) == dict(bands=None, nodata=0)
    assert infer_scene.scene_arg('a.tif,b.tif') == ['a.tif', 'b.tif']
    assert infer_scene.scene_arg('a.tif') == 'a.tif'
