"""configs/_base_/datasets/{vaihingen,potsdam,loveda,openearthmap}.py: the
four bases combine in one config, and their pipelines run on small tiles."""
import copy

import cv2
import numpy as np
import pytest
from mmengine.config import Config

import s5_mm  # noqa: F401
from s5_mm.registry import DATASETS

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'
NAMES = ('vaihingen', 'potsdam', 'loveda', 'openearthmap')
# top raw mask id per dataset (its valid ids after the dataset's mapping)
TOP_ID = {'vaihingen': 6, 'potsdam': 6, 'loveda': 7, 'openearthmap': 8}
CLASSES = {'vaihingen': 5, 'potsdam': 5, 'loveda': 7, 'openearthmap': 9}


@pytest.fixture(scope='module')
def cfg(repo_root, tmp_path_factory):
    path = tmp_path_factory.mktemp('cfg') / 'four.py'
    bases = [str(repo_root / f'configs/_base_/datasets/{n}.py')
             for n in NAMES]
    path.write_text(f'_base_ = {bases!r}\n')
    return Config.fromfile(str(path))


def make_root(root, top, size=(600, 700)):
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for d in ('img_dir', 'ann_dir'):
            (root / d / split).mkdir(parents=True)
        cv2.imwrite(str(root / 'img_dir' / split / 'a.png'),
                    rng.integers(0, 255, (*size, 3), np.uint8))
        cv2.imwrite(str(root / 'ann_dir' / split / 'a.png'),
                    rng.integers(0, top + 1, size).astype(np.uint8))


@pytest.mark.parametrize('name', NAMES)
def test_pipelines_on_tiles(cfg, name, tmp_path):
    make_root(tmp_path, TOP_ID[name])
    assert cfg[f'{name}_train_dataloader'].batch_size == 12
    loader = cfg[f'{name}_train_dataloader']
    assert loader.sampler.type == 'SeededDefaultSampler'
    assert loader.dataset.type == 'SeededDataset'
    train = copy.deepcopy(loader.dataset.dataset)
    train.data_root = str(tmp_path)
    ds = DATASETS.build(train)
    assert ds.metainfo['dataset_name'] == name
    assert len(ds.metainfo['classes']) == CLASSES[name]
    types = [type(t).__name__ for t in ds.pipeline.transforms]
    assert types[:3] == ['LoadImageFromFile', 'LoadAnnotations',
                         'CheckLabelRange']
    for t in ('RandomRescale', 'RandomCrop', 'RandomRot90',
              'MultiBandColorJitter', 'MultiBandGrayscale',
              'MultiBandGaussianBlur'):
        assert t in types
    np.random.seed(0)
    for _ in range(3):
        out = ds[0]
        sample = out['data_samples']
        assert sample.metainfo['dataset_name'] == name
        h, w = out['inputs'].shape[1:]
        assert h <= 512 and w <= 512
        gt = sample.gt_sem_seg.data
        assert tuple(gt.shape[1:]) == (h, w)
        vals = set(gt.unique().tolist())
        assert vals <= set(range(CLASSES[name])) | {255}
    val = copy.deepcopy(cfg[f'{name}_val_dataloader'].dataset)
    val.data_root = str(tmp_path)
    out = DATASETS.build(val)[0]
    gt_shape = tuple(out['data_samples'].gt_sem_seg.data.shape[1:])
    assert gt_shape == (600, 700)  # labels at full size for every protocol
    expect = (512, 512) if name == 'openearthmap' else (600, 700)
    assert tuple(out['inputs'].shape[1:]) == expect
    assert out['data_samples'].metainfo['ori_shape'] == (600, 700)


@pytest.mark.parametrize('name,metric', [('vaihingen', 'mIoU'),
                                         ('potsdam', 'mFscore'),
                                         ('loveda', 'mIoU'),
                                         ('openearthmap', 'mIoU')])
def test_metrics_and_flip_tta(cfg, name, metric, tmp_path):
    """Every base's <name>_tta_pipeline (tools/test.py --tta): the test
    pipeline's input and labels, plain and flipped."""
    assert cfg[f'{name}_val_evaluator'].iou_metrics == [metric]
    make_root(tmp_path, TOP_ID[name], size=(8, 10))
    val = copy.deepcopy(cfg[f'{name}_val_dataloader'].dataset)
    val.data_root = str(tmp_path)
    plain = DATASETS.build(copy.deepcopy(val))[0]
    val.pipeline = cfg[f'{name}_tta_pipeline']
    out = DATASETS.build(val)[0]
    flips = [s.metainfo['flip'] for s in out['data_samples']]
    assert flips == [False, True]
    assert all(s.metainfo['dataset_name'] == name
               for s in out['data_samples'])
    np.testing.assert_array_equal(out['inputs'][0].numpy(),
                                  plain['inputs'].numpy())
    np.testing.assert_array_equal(out['inputs'][1].numpy(),
                                  out['inputs'][0].numpy()[..., ::-1])
    np.testing.assert_array_equal(
        out['data_samples'][0].gt_sem_seg.data.numpy(),
        plain['data_samples'].gt_sem_seg.data.numpy())


def test_loveda_submit_loader_has_no_labels(cfg, tmp_path):
    (tmp_path / 'img_dir/test').mkdir(parents=True)
    cv2.imwrite(str(tmp_path / 'img_dir/test/5.png'),
                np.zeros((4, 4, 3), np.uint8))
    sub = copy.deepcopy(cfg.loveda_submit_dataloader.dataset)
    sub.data_root = str(tmp_path)
    out = DATASETS.build(sub)[0]
    assert 'gt_sem_seg' not in out['data_samples']
    assert out['data_samples'].metainfo['dataset_name'] == 'loveda'
