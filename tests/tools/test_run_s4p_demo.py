"""tools/run_s4p_demo.py: label splits and a 2-step run of both configs."""
import json
import subprocess
import sys

import numpy as np

from s5_mm.testing import load_tool


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
    for v in summary.values():
        assert 0 <= v['mean'] <= 100
    assert {r['method'] for r in res['results']} == {'supervised', 's4p'}
    s4p = [r for r in res['results'] if r['method'] == 's4p'][0]
    assert s4p['pseudo_label_shares'] is not None
    # the EMA teacher is scored as well
    assert 0 <= s4p['mIoU_teacher'] <= 100
    assert '| s4p |' in (tmp_path / 'results.md').read_text()
