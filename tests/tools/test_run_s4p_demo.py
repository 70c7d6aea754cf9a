"""tools/run_s4p_demo.py: label splits and a 2-step run of both configs."""
import json
import subprocess
import sys

import numpy as np
import torch
from test_train_test_tools import read_val_tiles

from s5_mm.testing import load_tool
from s5_mm.testing.checks import miou_range


def test_tile_split(landcover_tiles):
    tiles = landcover_tiles
    demo = load_tool('run_s4p_demo.py')
    s = demo.make_splits(tiles, 'tiles', every=10, fraction=0.01)
    lab = (tiles / 'splits/tiles/labelled.txt').read_text().split()
    unl = (tiles / 'splits/tiles/unlabelled.txt').read_text().split()
    names = sorted(p.stem for p in (tiles / 'img_dir/train').glob('*.tif'))
    assert lab == names[::10]
    assert not set(lab) & {u[:-4] for u in unl}
    assert len(lab) + len(unl) == len(names) == s['train_tiles']
    assert s['label_dir'] == 'ann_dir/train'


def test_sparse_split_keeps_a_fraction_of_pixels(landcover_tiles):
    import rasterio

    tiles = landcover_tiles
    demo = load_tool('run_s4p_demo.py')
    s = demo.make_splits(tiles, 'sparse', every=10, fraction=0.05)
    assert s['labelled_tiles'] == s['unlabelled_tiles'] == s['train_tiles']
    dense = kept = 0
    for p in sorted((tiles / 'ann_dir/train').glob('*.tif')):
        with rasterio.open(p) as a, \
                rasterio.open(tiles / s['label_dir'] / p.name) as b:
            full, sparse = a.read(1), b.read(1)
        valid = (full >= 1) & (full <= 7)
        dense += int(valid.sum())
        kept += int(((sparse >= 1) & (sparse <= 7)).sum())
        # kept labels are the true ones, nothing invented
        assert np.array_equal(sparse[sparse >= 1], full[sparse >= 1])
    assert kept == s['labelled_pixels']
    assert 0.03 < kept / dense < 0.07


def test_two_step_demo_writes_table(landcover_tiles, tmp_path, repo_root):
    tiles = landcover_tiles
    # as a user runs it: its runs go to spawned worker processes, which
    # import the script as __main__
    proc = subprocess.run([
        sys.executable, 'tools/run_s4p_demo.py', '--data-root',
        str(tiles), '--work-dir', str(tmp_path), '--iters', '2', '--seeds',
        '0', '--no-fetch', '--cfg-options',
        'model.semi_train_cfg.unsup_start_iter=0',
        'model.semi_train_cfg.conf_thresh=0.0'
    ], cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / 'results.json').read_text())
    summary = res['summary']
    assert set(summary) == {'supervised', 's4p'}
    assert {r['method'] for r in res['results']} == {'supervised', 's4p'}
    # each reported mIoU is that of its run's final weights on the val
    # tiles (the EMA teacher's too), recomputed here
    images, labels = read_val_tiles(tiles)
    demo = load_tool('run_s4p_demo.py')
    for r in res['results']:
        assert summary[r['method']]['mean'] == r['mIoU']  # one seed
        ckpt = tmp_path / f'{r["method"]}_seed0' / 'iter_2.pth'
        cfg = demo.S4P_CFG if r['method'] == 's4p' else demo.SUP_CFG
        nets = [('mIoU', 'student.' if r['method'] == 's4p' else '')]
        if r['method'] == 's4p':
            nets.append(('mIoU_teacher', 'teacher.'))
        for key, prefix in nets:
            lo, hi, _ = miou_range(val_logits(cfg, ckpt, prefix, images),
                                   labels, 7, axis=1)
            assert hi - lo < 1 and lo - 0.006 <= r[key] <= hi + 0.006, (
                r['method'], key, r[key], lo, hi)
    s4p = [r for r in res['results'] if r['method'] == 's4p'][0]
    assert s4p['pseudo_label_shares'] is not None
    assert '| s4p |' in (tmp_path / 'results.md').read_text()


def val_logits(cfg_path, ckpt, prefix, images):
    """Logits of the val tiles from the ``prefix`` weights of ``ckpt`` (the
    config's segmentor, eval mode, whole tiles)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(cfg_path)).model
    model = MODELS.build(cfg.get('segmentor', cfg))
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    model.load_state_dict({k[len(prefix):]: v for k, v in
                           state['state_dict'].items()
                           if k.startswith(prefix)})
    model.eval()
    h, w = images.shape[-2:]
    metas = [dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w))
             ] * len(images)
    with torch.no_grad():
        return model.encode_decode(images, metas).numpy()
