"""SegScorer on real land-cover tiles with the briefly trained demo model:
tile and resize modes against direct computations, S4P wrappers, and the
EntropySelectionHook against the tool on the saved checkpoint."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s5_mm.testing import landcover_model as lm
from s5_mm.testing import load_tool

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def trained(tmp_path_factory, shared_data):
    return lm.trained_model(tmp_path_factory, shared_data)


@pytest.fixture(scope='module')
def model(trained):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    m = MODELS.build(Config.fromfile(str(trained[1])).model)
    load_checkpoint(m, str(trained[2]), map_location='cpu')
    return m.eval()


def _tiles(root, k=4):
    """k fully valid tiles, then one partly valid (nodata border)."""
    from s5_mm.selection.selector import ImageReader
    reader = ImageReader(dict(type='LoadGeoImageFromFile',
                              expected_bands=6))
    tiles = [reader(str(p))
             for p in sorted((root / 'img_dir/train').glob('*.tif'))]
    share = [float(t['valid'].float().mean()) for t in tiles]
    full = [t for t, s in zip(tiles, share) if s == 1]
    part = [t for t, s in zip(tiles, share) if 0.3 < s < 1]
    return full[:k] + part[:1]


def test_tile_mode_equals_quadrants(trained, model):
    from s5_mm.selection import SegScorer
    t = _tiles(trained[0])
    # a 64 x 48 mosaic: two full tiles on top, two half tiles below
    img = torch.cat([torch.cat([t[0]['img'], t[1]['img']], 2),
                     torch.cat([t[2]['img'], t[4]['img']], 2)[:, :16]], 1)
    valid = torch.cat([torch.cat([t[0]['valid'], t[1]['valid']], 1),
                       torch.cat([t[2]['valid'], t[4]['valid']], 1)[:16]], 0)
    tile = SegScorer(model, (32, 32), mode='tile', bg_index=None)
    whole = SegScorer(model, None, bg_index=None)
    got = tile.score_images([img], [valid], want_labels=True)
    parts = []
    for r in (0, 32):
        for c in (0, 32):
            x = torch.zeros(6, 32, 32)
            v = torch.zeros(32, 32, dtype=torch.bool)
            h = min(32, 48 - r)
            x[:, :h] = img[:, r:r + h, c:c + 32]
            v[:h] = valid[r:r + h, c:c + 32]
            parts.append((x, v))
    s = whole.score_units([p[0] for p in parts], [p[1] for p in parts],
                          want_logits=True)
    ref = float(s.ent_sum.sum() / s.valid_count.sum())
    assert got['entropy'][0] == pytest.approx(ref, rel=1e-9)
    f = s.feat_sum.sum(0) / s.weight_sum.sum()
    assert np.allclose(got['feature'][0], (f / f.norm()).numpy(), atol=1e-6)
    lab = got['labels'][0]
    assert lab.shape == (48, 64)
    exp = s.logits[3].argmax(0)[:16].numpy()
    exp[~parts[3][1][:16].numpy()] = 255
    assert (lab[32:, 32:] == exp).all()


def test_resize_mode_equals_scoring_the_resized_image(trained, model):
    from s5_mm.selection import SegScorer
    t = _tiles(trained[0])[0]
    big = F.interpolate(t['img'][None], size=(64, 64), mode='nearest')[0]
    v = torch.ones(64, 64, dtype=torch.bool)
    got = SegScorer(model, (32, 32), bg_index=None).score_images(
        [big], [v], want_labels=True)
    small = F.interpolate(big[None], size=(32, 32), mode='bilinear',
                          align_corners=False)[0]
    ref = SegScorer(model, None, bg_index=None).score_images(
        [small], [torch.ones(32, 32, dtype=torch.bool)])
    assert got['entropy'][0] == pytest.approx(ref['entropy'][0], rel=1e-9)
    assert got['labels'][0].shape == (64, 64)
    # background excluded lowers the entropy by that class's term only
    fg = SegScorer(model, None, bg_index=0).score_images(
        [small], [torch.ones(32, 32, dtype=torch.bool)])
    assert fg['entropy'][0] < ref['entropy'][0]


def test_s4p_wrapper_scores_with_its_predictor(trained):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from s5_mm.selection import SegScorer
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(REPO / 'configs/demo/'
                              's4p_vit-tiny_landcover.py'))
    s4p = MODELS.build(cfg.model).eval()
    t = _tiles(trained[0])[:2]
    args = ([x['img'] for x in t], [x['valid'] for x in t])
    a = SegScorer(s4p, (32, 32), bg_index=None).score_images(*args)
    b = SegScorer(s4p.student, (32, 32), bg_index=None).score_images(*args)
    assert np.array_equal(a['entropy'], b['entropy'])
    with pytest.raises(TypeError, match='no backbone/decode_head'):
        SegScorer(torch.nn.Linear(2, 2))


def test_hook_selects_after_training_like_the_tool(trained, tmp_path):
    from mmengine.runner import Runner
    root = trained[0]
    img = root / 'img_dir/train'
    work = tmp_path / 'work'
    cfg = lm.build_sup_cfg(root, work, 4)
    opts = dict(clusters=3, bg_index=None, num_workers=0, batch_size=16,
                chunk_size=32, pool_root=str(img), labeled_root=str(img),
                list_suffix='.tif')
    cfg.custom_hooks = [dict(
        type='EntropySelectionHook',
        pool=str(root / 'splits/tiles/unlabelled.txt'),
        labeled=str(root / 'splits/tiles/labelled.txt'), budget=30,
        **opts)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = [h for h in runner.hooks
            if type(h).__name__ == 'EntropySelectionHook'][0]
    assert hook.summary['selected'] == 30
    assert runner.model.training  # mode restored
    sel = (work / 'selection/selected.txt').read_text()
    tool = load_tool('select_data.py')
    out = tmp_path / 'tool'
    rc = tool.main([
        str(trained[1]), str(work / 'iter_4.pth'), '--pool',
        str(root / 'splits/tiles/unlabelled.txt'), '--labeled',
        str(root / 'splits/tiles/labelled.txt'), '--budget', '30', '--out',
        str(out), '--clusters', '3', '--all-classes', '--num-workers', '0',
        '--batch-size', '16', '--chunk-size', '32', '--pool-root', str(img),
        '--labeled-root', str(img), '--list-suffix', '.tif',
        '--no-progress'])
    assert rc == 0
    assert (out / 'selected.txt').read_text() == sel
    # a following S4P stage reads it as its unlabelled list
    from s5_mm.datasets.unlabeled import UnlabeledImageDataset
    ds = UnlabeledImageDataset(ann_file=str(work / 'selection/selected.txt'),
                               data_root=str(root),
                               data_prefix=dict(img_path='img_dir/train'),
                               pipeline=[])
    assert len(ds) == 30
