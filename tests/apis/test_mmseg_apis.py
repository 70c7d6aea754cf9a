"""MMSeg's inference API (``mmseg.apis.init_model`` / ``inference_model``)
and ``S5SegInferencer`` (``MMSegInferencer`` for GeoTIFF and multi-dataset
configs) on every demo segmentation config kind and real land-cover tiles:
their predictions are those ``tools/test.py --out`` writes for the same
tiles and weights (on pixels whose top-2 logit gap exceeds MARGIN), for the
S4P student and EMA teacher and for each MoE-MDF head."""
import numpy as np
import pytest
import rasterio
from mmengine.config import Config
from mmseg.apis import inference_model, init_model
from mmseg.registry import MODELS
from PIL import Image

from s5_mm.apis import S5SegInferencer
from s5_mm.testing import load_tool
from s5_mm.testing.landcover_model import (KIND_CONFIGS, data_root_options,
                                           kind_checkpoints)

MARGIN = 1e-3  # decided pixels: top-2 logit gap above it
NUM_TILES = 3


@pytest.fixture(scope='module')
def tiles(landcover_tiles):
    load_tool('run_mdf_demo.py').make_mdf_splits(landcover_tiles)
    names = (landcover_tiles / 'splits/mdf/test.txt').read_text().split()
    return [str(landcover_tiles / 'img_dir/val' / f'{n}.tif')
            for n in names[:NUM_TILES]]


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory, shared_data, landcover_tiles):
    return kind_checkpoints(tmp_path_factory, shared_data, landcover_tiles)


@pytest.fixture(scope='module')
def test_tool_out(checkpoints, landcover_tiles, tmp_path_factory, repo_root):
    """``tools/test.py CONFIG CKPT --out DIR`` once per kind (lazily)."""
    from mmengine.config import Config
    test_tool = load_tool('test.py')
    done = {}

    def run(kind):
        if kind not in done:
            rel = KIND_CONFIGS[kind]
            out = tmp_path_factory.mktemp(f'out_{kind}')
            cfg = Config.fromfile(str(repo_root / rel))
            test_tool.main([
                str(repo_root / rel), str(checkpoints[kind]), '--out',
                str(out), '--work-dir', str(out / 'work'), '--cfg-options'
            ] + data_root_options(cfg, landcover_tiles))
            done[kind] = out
        return done[kind]

    return run


def decided(seg_logits):
    top2 = seg_logits.data.topk(2, dim=0).values
    return (top2[0] - top2[1] > MARGIN).numpy()


CASES = [  # kind, cfg_options, --out subfolder of the reference
    ('upernet', None, ''),
    ('s4p', None, 'student'),
    ('s4p', {'model.semi_test_cfg.predict_on': 'teacher'}, 'teacher'),
    ('mdf', {'model.test_cfg.default_dataset': 'lc7'}, 'lc7'),
    ('mdf', {'model.test_cfg.default_dataset': 'lc3'}, 'lc3'),
    ('mdf_plain', {'model.test_cfg.default_dataset': 'lc3'}, 'lc3'),
]


@pytest.mark.parametrize('kind,options,sub', CASES,
                         ids=[f'{c[0]}-{c[2] or "plain"}' for c in CASES])
def test_apis_predict_as_the_test_tool(kind, options, sub, tiles,
                                       checkpoints, test_tool_out,
                                       repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    cfg, ckpt = KIND_CONFIGS[kind], str(checkpoints[kind])
    model = init_model(cfg, ckpt, device='cpu', cfg_options=options)
    results = inference_model(model, tiles)
    inferencer = S5SegInferencer(cfg, ckpt, device='cpu',
                                 cfg_options=options, show_progress=False)
    preds = inferencer(tiles)['predictions']
    out = test_tool_out(kind) / sub
    for tile, result, pred in zip(tiles, results, preds):
        stem = tile.rsplit('/', 1)[-1][:-len('.tif')]
        ref = np.array(Image.open(out / f'{stem}.png'))
        mask = decided(result.seg_logits)
        assert mask.mean() > 0.9
        ours = result.pred_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(ours[mask], ref[mask])
        np.testing.assert_array_equal(pred[mask], ref[mask])
        if kind.startswith('mdf'):  # the head that predicted it
            assert result.metainfo['dataset_name'] == sub
        if sub == 'teacher':
            # its classifier is the student's rolled by one class
            student = np.array(Image.open(out.parent / 'student' /
                                          f'{stem}.png'))
            assert (ref[mask] == (student[mask].astype(int) - 1) % 7).all()


def test_s5_inferencer_array_input_and_outputs(tiles, checkpoints, tmp_path,
                                               repo_root, monkeypatch):
    """An HxWxC array (nodata as 0, as the loader sets it) predicts as its
    file; ``out_dir`` gets the class-map PNG and a picture."""
    monkeypatch.chdir(repo_root)
    inferencer = S5SegInferencer(KIND_CONFIGS['upernet'],
                                 str(checkpoints['upernet']), device='cpu',
                                 show_progress=False)
    with rasterio.open(tiles[0]) as src:
        bands = src.read(masked=True)
    img = np.where(np.ma.getmaskarray(bands), 0, bands.data).astype(
        np.float32).transpose(1, 2, 0)
    from_file = inferencer(tiles[0], return_datasamples=True)
    from_array = inferencer(img, out_dir=str(tmp_path))['predictions']
    mask = decided(from_file.seg_logits)
    assert mask.mean() > 0.9
    np.testing.assert_array_equal(
        from_array[mask], from_file.pred_sem_seg.data[0].numpy()[mask])
    written = np.array(Image.open(tmp_path / 'pred/00000000_pred.png'))
    np.testing.assert_array_equal(written, from_array)
    assert (tmp_path / 'vis/00000000_vis.jpg').is_file()


def test_dataset_and_network_options_are_checked(tiles, checkpoints,
                                                 repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    mdf, ckpt = KIND_CONFIGS['mdf'], str(checkpoints['mdf'])
    model = init_model(mdf, ckpt, device='cpu')
    with pytest.raises(KeyError, match='test_cfg.default_dataset'):
        inference_model(model, tiles[0])
    with pytest.raises(KeyError, match='test_cfg.default_dataset'):
        S5SegInferencer(mdf, ckpt, device='cpu')
    with pytest.raises(ValueError, match="default_dataset 'lc5' has no head"):
        init_model(mdf, ckpt, device='cpu',
                   cfg_options={'model.test_cfg.default_dataset': 'lc5'})
    with pytest.raises(ValueError, match='semi_test_cfg.predict_on'):
        init_model(KIND_CONFIGS['s4p'], None, device='cpu',
                   cfg_options={'model.semi_test_cfg.predict_on': 'ema'})
    # init_model passes pretrained=None, train_cfg=None; others are refused
    s4p = Config.fromfile(KIND_CONFIGS['s4p']).model
    with pytest.raises(ValueError, match='takes no train_cfg .*'
                       'segmentor.train_cfg'):
        MODELS.build(dict(s4p, train_cfg=dict()))
