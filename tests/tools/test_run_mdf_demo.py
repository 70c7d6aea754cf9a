"""tools/run_mdf_demo.py on a few steps: the splits are disjoint, the lc3
labels are the documented merge of the 7 classes, pre-training, MoE-MDF and
single-dataset runs train and score on the test tiles with their protocols,
and the MoE-MDF checkpoint reloads through tools/test.py with equal
scores."""
import json

import numpy as np
import pytest
import rasterio
import torch

from s5_mm.testing import load_tool
from s5_mm.testing.checks import miou_range


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
    # the lc7 score is the mIoU of the saved weights on the lc7 test tiles
    run = moe['runs'][0]
    lo, hi, _ = checkpoint_miou_range(run['dumped_config'],
                                      run['checkpoint'], 'lc7', 7)
    assert hi - lo < 1 and lo - 0.006 <= moe['scores']['lc7'] <= hi + 0.006
    # tools/test.py on the saved config + checkpoint: the same scores
    assert res['reload_metrics'] == moe['metrics']
    sdf = next(r for r in res['results'] if r['method'] == 'sdf')
    assert len(sdf['runs']) == 2 and set(sdf['scores']) == {'lc7', 'lc3'}
    assert (tmp_path / 'work' / 'results.md').read_text().count('|') > 10


def checkpoint_miou_range(config, ckpt, dataset_name, num_classes):
    """mIoU bounds (:func:`miou_range`, pixels within 1e-4 of a tie either
    class) of the checkpoint on the ``dataset_name`` samples of the
    config's test set, one image at a time."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    model.load_state_dict(torch.load(ckpt, map_location='cpu',
                                     weights_only=False)['state_dict'])
    model.eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    logits, labels = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        if item['data_samples'].metainfo.get('dataset_name') != dataset_name:
            continue
        data = model.data_preprocessor(pseudo_collate([item]), False)
        with torch.no_grad():
            out = model.predict(data['inputs'], data['data_samples'])[0]
        logits.append(out.seg_logits.data.numpy())
        labels.append(out.gt_sem_seg.data[0].numpy())
    assert logits
    return miou_range(np.stack(logits), np.stack(labels), num_classes,
                      axis=1)
