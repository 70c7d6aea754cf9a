"""tools/run_mdf_demo.py on a few steps: the splits are disjoint, the lc3
labels are the documented merge of the 7 classes, pre-training, MoE-MDF and
single-dataset runs train and score on the test tiles with their protocols,
and the MoE-MDF checkpoint reloads through tools/test.py with equal
scores."""
import json

import numpy as np
import pytest
import rasterio

from s5_mm.testing import load_tool


@pytest.fixture(scope='module')
def demo(repo_root):
    return load_tool('run_mdf_demo.py')


@pytest.fixture(scope='module')
def tiles(tmp_path_factory, shared_data):
    prepare_landcover = load_tool(
        'dataset_converters/prepare_landcover.py').prepare_landcover
    out = tmp_path_factory.mktemp('landcover')
    prepare_landcover(out, src=shared_data / 'landcover_nc', fetch=False)
    return out


def test_splits_and_coarse_labels(demo, tiles):
    counts = demo.make_mdf_splits(tiles)
    lists = {k: (tiles / 'splits' / 'mdf' / f'{k}.txt').read_text().split()
             for k in counts}
    train = set(lists['pretrain']) | set(lists['lc7_train']) | \
        set(lists['lc3_train'])
    assert len(train) == sum(counts[k] for k in ('pretrain', 'lc7_train',
                                                  'lc3_train')) == 99
    assert not set(lists['tune']) & set(lists['test'])
    assert len(lists['tune']) + len(lists['test']) == 36
    # tune and test are whole tile columns
    cols = {k: {demo._column(n) for n in lists[k]} for k in ('tune', 'test')}
    assert not cols['tune'] & cols['test']
    merge = {1: 1, 2: 2, 3: 2, 4: 2, 5: 2, 6: 3, 7: 1}
    seen = set()
    for name in lists['lc3_train'][:10] + lists['test'][:5]:
        split = 'val' if name in lists['test'] else 'train'
        with rasterio.open(tiles / f'ann_dir/{split}/{name}.tif') as s:
            fine, nodata = s.read(1), s.nodata
        with rasterio.open(tiles / f'ann_dir/{split}_coarse/{name}.tif') as s:
            coarse = s.read(1)
        for k, v in merge.items():
            assert (coarse[fine == k] == v).all()
            seen |= set(np.unique(coarse[fine == k]).tolist())
        if nodata is not None:
            assert (coarse[fine == nodata] == nodata).all()
    assert {1, 2} <= seen


def test_demo_trains_scores_and_reloads(demo, tiles, tmp_path):
    summary = demo.main(['--work-dir', str(tmp_path / 'work'),
                         '--data-root', str(tiles), '--iters', '3',
                         '--pretrain-iters', '2', '--seeds', '0',
                         '--methods', 'moe', 'sdf', '--no-fetch'])
    assert set(summary) == {'moe', 'sdf'}
    res = json.loads((tmp_path / 'work' / 'results.json').read_text())
    moe = next(r for r in res['results'] if r['method'] == 'moe')
    # each dataset scored with its own metric, on the test tiles
    assert {'lc7/mIoU', 'lc3/mFscore', 'mean'} <= set(moe['metrics'])
    assert 'lc3/mIoU' not in moe['metrics']
    assert 0 <= moe['scores']['lc7'] <= 100
    # tools/test.py on the saved config + checkpoint: the same scores
    assert res['reload_metrics'] == moe['metrics']
    sdf = next(r for r in res['results'] if r['method'] == 'sdf')
    assert len(sdf['runs']) == 2 and set(sdf['scores']) == {'lc7', 'lc3'}
    assert (tmp_path / 'work' / 'results.md').read_text().count('|') > 10
