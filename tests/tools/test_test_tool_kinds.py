"""tools/test.py --out, --tta and --show-dir on the S4P and MoE-MDF demo
configs (the plain UperNet one: test_train_test_tools.py), real land-cover
tiles: the written class maps are the predictions of the checkpoint's
networks computed here from the tiles read with rasterio alone (student and
EMA teacher; each MoE-MDF head with its flip protocol), on pixels whose
top-2 probability gap exceeds MARGIN; pictures are named per network and
per dataset."""
import numpy as np
import pytest
import rasterio
import torch
from mmengine.config import Config
from PIL import Image

from s5_mm.testing import load_tool
from s5_mm.testing.landcover_model import (KIND_CONFIGS, data_root_options,
                                           kind_checkpoints)

MARGIN = 1e-4  # decided pixels: top-2 probability gap above it
NUM_TILES = 6  # of the MDF demo's test tiles


@pytest.fixture(scope='module')
def data_root(landcover_tiles):
    load_tool('run_mdf_demo.py').make_mdf_splits(landcover_tiles)
    return landcover_tiles


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory, shared_data, data_root):
    return kind_checkpoints(tmp_path_factory, shared_data, data_root)


def read_tiles(paths, pre):
    """Normalised tiles (nodata pixels 0 before normalisation)."""
    mean = np.array(pre.mean, np.float32)[:, None, None]
    std = np.array(pre.std, np.float32)[:, None, None]
    out = []
    for p in paths:
        with rasterio.open(p) as src:
            bands = src.read(masked=True)
        x = np.where(np.ma.getmaskarray(bands), 0, bands.data)
        out.append((x.astype(np.float32) - mean) / std)
    return torch.from_numpy(np.stack(out))


def probabilities(segmentor, x, dataset=None, flip=False):
    """Softmax of ``encode_decode`` (with ``flip``: averaged with the
    flipped-back prediction of the flipped tiles)."""
    h, w = x.shape[-2:]
    meta = dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w))
    if dataset is not None:
        meta['dataset_name'] = dataset
    metas = [meta] * len(x)
    with torch.no_grad():
        probs = segmentor.encode_decode(x, metas).softmax(1)
        if flip:
            flipped = segmentor.encode_decode(x.flip(-1), metas)
            probs = (probs + flipped.softmax(1).flip(-1)) / 2
    return probs


def build(cfg, ckpt):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    model.load_state_dict(state['state_dict'])
    return model.eval()


def assert_maps(out_dir, names, probs):
    top2 = probs.topk(2, dim=1).values
    decided = (top2[:, 0] - top2[:, 1] > MARGIN).numpy()
    assert decided.mean() > 0.9
    expect = probs.argmax(1).numpy()
    written = np.stack([np.array(Image.open(out_dir / f'{n}.png'))
                        for n in names])
    np.testing.assert_array_equal(written[decided], expect[decided])


def tile_names(data_root, tmp_path):
    """NUM_TILES test tiles, listed in ``tmp_path/tiles.txt``."""
    names = (data_root / 'splits/mdf/test.txt').read_text().split()
    names = names[:NUM_TILES]
    (tmp_path / 'tiles.txt').write_text('\n'.join(names) + '\n')
    return names


def run_test_tool(kind, ckpt, data_root, tmp_path, *args):
    """tools/test.py on the tiles of ``tmp_path/tiles.txt``."""
    cfg = Config.fromfile(KIND_CONFIGS[kind])
    options = data_root_options(cfg, data_root)
    options += [o.split('data_root=')[0] + f'ann_file={tmp_path}/tiles.txt'
                for o in options]
    return load_tool('test.py').main(
        [KIND_CONFIGS[kind], str(ckpt), '--work-dir', str(tmp_path / 'w'),
         *args, '--cfg-options'] + options)


def test_s4p_out_tta_show_dir(data_root, checkpoints, tmp_path, repo_root,
                              monkeypatch):
    monkeypatch.chdir(repo_root)
    names = tile_names(data_root, tmp_path)
    cfg = Config.fromfile(KIND_CONFIGS['s4p'])
    model = build(cfg, checkpoints['s4p'])
    x = read_tiles([data_root / 'img_dir/val' / f'{n}.tif' for n in names],
                   cfg.model.segmentor.data_preprocessor)

    run_test_tool('s4p', checkpoints['s4p'], data_root, tmp_path, '--out',
                  str(tmp_path / 'out'), '--show-dir', str(tmp_path / 'vis'))
    for net in ('student', 'teacher'):
        assert_maps(tmp_path / 'out' / net, names,
                    probabilities(getattr(model, net), x))
    pictures = [p.name for p in (tmp_path / 'vis').rglob('*.png')]
    for net in ('student', 'teacher'):
        assert sum(p.startswith(f'{net}_') for p in pictures) == len(names)

    metrics = run_test_tool('s4p', checkpoints['s4p'], data_root, tmp_path,
                            '--tta', '--out', str(tmp_path / 'tta'))
    assert {'student/mIoU', 'teacher/mIoU'} <= set(metrics)
    for net in ('student', 'teacher'):
        assert_maps(tmp_path / 'tta' / net, names,
                    probabilities(getattr(model, net), x, flip=True))


def test_mdf_out_tta_show_dir(data_root, checkpoints, tmp_path, repo_root,
                              monkeypatch):
    """lc7 is tested with flip averaging in the model (test_cfg), lc3 on
    the whole tile; --tta adds a flip to both (lc7's average is flip
    symmetric: the same maps)."""
    monkeypatch.chdir(repo_root)
    names = tile_names(data_root, tmp_path)
    cfg = Config.fromfile(KIND_CONFIGS['mdf'])
    model = build(cfg, checkpoints['mdf'])
    x = read_tiles([data_root / 'img_dir/val' / f'{n}.tif' for n in names],
                   cfg.model.data_preprocessor)
    probs = {'lc7': probabilities(model, x, 'lc7', flip=True),
             'lc3': probabilities(model, x, 'lc3')}
    assert probs['lc7'].shape[1] == 7 and probs['lc3'].shape[1] == 3

    run_test_tool('mdf', checkpoints['mdf'], data_root, tmp_path, '--out',
                  str(tmp_path / 'out'), '--show-dir', str(tmp_path / 'vis'))
    for ds in ('lc7', 'lc3'):
        assert_maps(tmp_path / 'out' / ds, names, probs[ds])
    pictures = [p.name for p in (tmp_path / 'vis').rglob('*.png')]
    for ds in ('lc7', 'lc3'):
        assert sum(p.startswith(f'{ds}_') for p in pictures) == len(names)

    metrics = run_test_tool('mdf', checkpoints['mdf'], data_root, tmp_path,
                            '--tta', '--out', str(tmp_path / 'tta'))
    assert {'lc7/mIoU', 'lc3/mFscore', 'mean'} <= set(metrics)
    assert_maps(tmp_path / 'tta' / 'lc7', names, probs['lc7'])
    assert_maps(tmp_path / 'tta' / 'lc3', names,
                probabilities(model, x, 'lc3', flip=True))


def test_tta_pipeline_lookup(repo_root):
    """Each test dataset gets the TTA pipeline named after the test
    pipeline it uses; none found: an error naming the keys tried."""
    test_tool = load_tool('test.py')
    from s5_mm.utils.config import load_config
    cfg = load_config(str(repo_root / 'configs/mdf/vit-b-moe_4seg.py'))
    test_tool._enable_tta(cfg)
    parts = cfg.test_dataloader.dataset.datasets
    for part, name in zip(parts, ('vaihingen', 'potsdam', 'loveda',
                                  'openearthmap')):
        assert part.pipeline == cfg[f'{name}_tta_pipeline']
    assert cfg.model.type == 'SegTTAModel'
    cfg = load_config(
        str(repo_root / 'configs/mdf/vit-b-moe_loveda-submit.py'))
    with pytest.raises(KeyError, match=r"no TTA pipeline .*'loveda'.*"
                       r"tta_pipeline"):
        test_tool._enable_tta(cfg)
