"""Tiled scene inference: georeferenced round trips, multispectral stacks,
equality with MMSeg's slide inference (average merge) and with whole-image
inference (center merge)."""
import numpy as np
import pytest
import rasterio
import torch
from mmengine.config import ConfigDict
from PIL import Image
from rasterio.windows import Window

from s5_mm.datasets.transforms.geo_loading import LoadGeoImageFromFile
from s5_mm.apis.inference import infer_scene
from s5_mm.geo.stats import compute_band_stats
from s5_mm.testing import build_tiny_segmentor, tiny_segmentor_cfg

BANDS = (10, 20, 30, 40, 50, 70)
LARGE = '2019_YELL_2_528000_4978000_image_crop2.png'


def reference_logits(model, img_hwc, mode='whole', crop=None, stride=None):
    """Logits of the whole image through MMSeg (whole or slide inference)."""
    x = torch.from_numpy(np.ascontiguousarray(img_hwc.transpose(2, 0, 1)))
    h, w = x.shape[1:]
    data = model.data_preprocessor(dict(inputs=[x]), False)
    metas = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w))]
    with torch.no_grad():
        if mode == 'slide':
            model.test_cfg = ConfigDict(mode='slide', crop_size=crop,
                                        stride=stride)
            out = model.slide_inference(data['inputs'], metas)
        else:
            out = model.encode_decode(data['inputs'], metas)
    return out[0].numpy()


def softmax_max(logits):
    z = np.exp(logits - logits.max(0))
    return (z / z.sum(0)).max(0)


def softmax_entropy(logits):
    z = np.exp(logits - logits.max(0))
    p = z / z.sum(0)
    return -(p * np.log(p)).sum(0)


def assert_argmax_where_decided(cls, ref, margin=1e-4):
    """Tiled and whole-image logits agree to ~1e-6, not bit for bit: the
    classes must agree where the top-2 logit gap exceeds ``margin``."""
    top2 = np.sort(ref, axis=0)[-2:]
    decided = top2[1] - top2[0] > margin
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(cls[decided], ref.argmax(0)[decided])


@pytest.mark.parametrize('name', ['rmnp-rgb.tif', 'OSBS_029.tif'])
def test_round_trip_georeference_and_nodata(shared_data, tmp_path, name):
    model = build_tiny_segmentor(3, 5)
    path = shared_data / 'geotiff' / name
    out = tmp_path / 'pred.tif'
    res = infer_scene(model, path, out, tile_size=128, stride=96,
                      batch_size=3, progress=False)
    assert res['num_classes'] == 5
    valid = LoadGeoImageFromFile()(dict(img_path=str(path)))['valid_mask']
    with rasterio.open(path) as src, rasterio.open(out) as pred:
        assert pred.crs == src.crs and pred.transform == src.transform
        assert (pred.width, pred.height) == (src.width, src.height)
        assert pred.count == 1 and pred.dtypes[0] == 'uint8'
        assert pred.nodata == 255
        assert pred.profile['compress'] == 'deflate'
        assert pred.profile.get('tiled') and pred.block_shapes[0] == (256, 256)
        cls = pred.read(1)
    assert np.array_equal(cls == 255, ~valid)  # nodata exactly where input is
    assert cls[valid].max() < 5 and len(np.unique(cls[valid])) > 1


def test_average_merge_equals_mmseg_slide_inference(shared_data, tmp_path):
    model = build_tiny_segmentor(3, 5)
    path = shared_data / 'geotiff' / 'rmnp-rgb.tif'
    # chunk 128 < width 485: four column bands with halos spilled between them
    res = infer_scene(model, path, tmp_path / 'p.tif', tile_size=96,
                      stride=64, batch_size=5, merge='average',
                      write_confidence=True, chunk_width=128, block_size=64,
                      progress=False)
    loaded = LoadGeoImageFromFile()(dict(img_path=str(path)))
    ref = reference_logits(model, loaded['img'], 'slide', (96, 96), (64, 64))
    valid = loaded['valid_mask']
    with rasterio.open(res['classes']) as a, \
            rasterio.open(res['confidence']) as c:
        cls, conf = a.read(1), c.read(1)
    # Tolerance 1e-6: float32 sums run in another order at band seams
    # (measured 1.2e-7; bit-identical with a single band).
    np.testing.assert_allclose(conf[valid], softmax_max(ref)[valid], atol=1e-6)
    top2 = np.sort(ref, axis=0)[-2:]
    decided = valid & (top2[1] - top2[0] > 1e-5)
    assert decided[valid].mean() > 0.99
    np.testing.assert_array_equal(cls[decided], ref.argmax(0)[decided])
    assert np.isnan(conf[~valid]).all()


def test_large_scene_center_merge_equals_whole_image(shared_data, tmp_path):
    model = build_tiny_segmentor(3, 4, seed=1)
    png = shared_data / 'large_scene' / LARGE
    # window by window over the whole 2299 x 2472 scene; overlap margin
    # (tile - stride) / 2 = 32 px > receptive-field radius 4
    res = infer_scene(model, png, tmp_path / 'scene.tif', tile_size=512,
                      stride=448, batch_size=2, merge='center',
                      write_confidence=True, write_entropy=True,
                      chunk_width=1024, progress=False)
    with rasterio.open(res['classes']) as a, \
            rasterio.open(res['confidence']) as c, \
            rasterio.open(res['entropy']) as e:
        assert (a.width, a.height) == (2299, 2472)
        win = Window(700, 900, 600, 500)
        cls, conf = a.read(1, window=win), c.read(1, window=win)
        ent = e.read(1, window=win)
        full_cls = a.read(1)
    assert res['num_windows'] == 6 * 5
    # whole-image inference on a crop the tiled pass also covered: compare
    # pixels at least the receptive-field radius (4) from the crop border
    with rasterio.open(png) as src:
        m = 8
        big = Window(win.col_off - m, win.row_off - m, win.width + 2 * m,
                     win.height + 2 * m)
        img = src.read(window=big).transpose(1, 2, 0).astype(np.float32)
    ref = reference_logits(model, img)[:, m:-m, m:-m]
    np.testing.assert_allclose(conf, softmax_max(ref), atol=1e-5)
    np.testing.assert_allclose(ent, softmax_entropy(ref), atol=1e-5)
    assert_argmax_where_decided(cls, ref)
    assert len(np.unique(full_cls)) >= 2


def test_center_merge_equals_whole_image_on_small_scene(
        shared_data, tmp_path):
    model = build_tiny_segmentor(3, 4, seed=2)
    png = shared_data / 'large_scene' / LARGE
    with rasterio.open(png) as src:
        img = src.read(window=Window(1000, 1200, 300, 260))
    small = tmp_path / 'crop.tif'
    with rasterio.open(small, 'w', driver='GTiff', width=300, height=260,
                       count=3, dtype='uint8') as dst:
        dst.write(img)
    res = infer_scene(model, small, tmp_path / 'crop_pred.tif', tile_size=64,
                      stride=48, batch_size=7, merge='center',
                      write_confidence=True, write_entropy=True,
                      chunk_width=64, block_size=64, progress=False)
    ref = reference_logits(model, img.transpose(1, 2, 0).astype(np.float32))
    with rasterio.open(res['classes']) as a, \
            rasterio.open(res['confidence']) as c, \
            rasterio.open(res['entropy']) as e:
        cls, conf, ent = a.read(1), c.read(1), e.read(1)
    np.testing.assert_allclose(conf, softmax_max(ref), atol=1e-5)
    np.testing.assert_allclose(ent, softmax_entropy(ref), atol=1e-5)
    assert_argmax_where_decided(cls, ref)


def test_multispectral_landcover_stack(shared_data, tmp_path):
    d = shared_data / 'landcover_nc'
    files = [str(d / f'lsat7_2000_{b}.tif') for b in BANDS]
    mean, std, _ = compute_band_stats([files])
    model = build_tiny_segmentor(6, 7)
    model.data_preprocessor.mean.copy_(torch.tensor(mean).view(-1, 1, 1))
    model.data_preprocessor.std.copy_(torch.tensor(std).view(-1, 1, 1))
    model.dataset_meta = dict(palette=[[i * 30, 255 - i * 30, 7 * i]
                                       for i in range(7)])
    png = tmp_path / 'ql.png'
    res = infer_scene(model, files, tmp_path / 'lc.tif', tile_size=128,
                      stride=96, write_confidence=True, write_entropy=True,
                      quicklook_png=png, progress=False)
    valid = LoadGeoImageFromFile()(dict(img_path=files))['valid_mask']
    with rasterio.open(files[0]) as src, rasterio.open(res['classes']) as p, \
            rasterio.open(res['confidence']) as c, \
            rasterio.open(res['entropy']) as e:
        assert p.crs == src.crs and p.transform == src.transform
        assert p.shape == src.shape == (264, 489)
        cls, conf, ent = p.read(1), c.read(1), e.read(1)
    assert (cls == 255).sum() == 44874 and np.array_equal(cls != 255, valid)
    assert np.array_equal(np.isnan(conf), ~valid)
    assert (conf[valid] >= 1 / 7 - 1e-6).all() and (conf[valid] <= 1).all()
    assert (ent[valid] >= 0).all() and (ent[valid] <= np.log(7) + 1e-5).all()
    # lower confidence goes with higher entropy
    assert np.corrcoef(conf[valid], ent[valid])[0, 1] < -0.5
    ql = np.asarray(Image.open(png))
    assert ql.shape == (264, 489, 3)
    assert (ql[~valid] == 0).all()
    k = int(cls[valid][0])
    assert ql[valid][0].tolist() == [k * 30, 255 - k * 30, 7 * k]


def test_dataset_name_selects_head_of_multi_dataset_model(shared_data,
                                                          tmp_path):
    from mmseg.registry import MODELS

    import s5_mm.models.segmentors.multi_head  # noqa: F401  (registers it)
    cfg = tiny_segmentor_cfg(3, 3)
    head = cfg['decode_head']
    cfg.update(type='MultiHeadEncoderDecoder',
               decode_head=dict(a=dict(head, num_classes=3),
                                b=dict(head, num_classes=6)))
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    path = shared_data / 'geotiff' / 'OSBS_029.tif'
    for name, k in (('a', 3), ('b', 6)):
        res = infer_scene(model, path, tmp_path / f'{name}.tif',
                          tile_size=256, stride=192, dataset_name=name,
                          progress=False)
        assert res['num_classes'] == k
        with rasterio.open(res['classes']) as p:
            cls = p.read(1)
        assert cls[cls != 255].max() < k
    with pytest.raises(KeyError, match='dataset_name'):
        infer_scene(model, path, tmp_path / 'x.tif', tile_size=256,
                    stride=192, progress=False)


def test_bad_arguments(shared_data, tmp_path):
    model = build_tiny_segmentor(3, 2)
    path = shared_data / 'geotiff' / 'OSBS_029.tif'
    with pytest.raises(ValueError, match='merge'):
        infer_scene(model, path, tmp_path / 'x.tif', tile_size=64, stride=32,
                    merge='max')
    with pytest.raises(ValueError, match='stride'):
        infer_scene(model, path, tmp_path / 'x.tif', tile_size=64, stride=96)
    with pytest.raises(ValueError, match='normalises 3 bands.*gives 2'):
        infer_scene(model, path, tmp_path / 'x.tif', tile_size=64, stride=32,
                    bands=[1, 2])
    with pytest.raises(FileNotFoundError, match='none.tif'):
        infer_scene(model, tmp_path / 'none.tif', tmp_path / 'x.tif',
                    tile_size=64, stride=32)
