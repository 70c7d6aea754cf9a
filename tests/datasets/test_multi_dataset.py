"""MDFConcatDataset with mmdet.MultiSourceSampler: every step draws from
every dataset (the short one repeats), samples carry their dataset name,
per-dataset metainfo; the epoch length of MultiSourceTrainLoop; the config
consistency hook."""
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmdet.datasets.samplers import MultiSourceSampler
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

import s5_mm  # noqa: F401
from s5_mm.datasets.multi_dataset import MDFConcatDataset, dataset_names_of
from s5_mm.engine.hooks import MultiDatasetCheckHook
from s5_mm.engine.runner import iters_per_epoch
from s5_mm.registry import DATASETS

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def make_folder(root, n, classes):
    rng = np.random.default_rng(n)
    for i in range(n):
        mmcv.imwrite(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8),
                     str(root / 'img' / f'{i}.png'))
        mmcv.imwrite(rng.integers(0, classes, (8, 8), dtype=np.uint8),
                     str(root / 'ann' / f'{i}.png'))
    return dict(type='BaseSegDataset', data_root=str(root),
                data_prefix=dict(img_path='img', seg_map_path='ann'),
                img_suffix='.png', seg_map_suffix='.png',
                metainfo=dict(classes=tuple(f'c{k}' for k in range(classes))),
                pipeline=PIPELINE)


@pytest.fixture
def two(tmp_path):
    return [make_folder(tmp_path / 'a', 2, 3), make_folder(tmp_path / 'b', 5, 4)]


def test_samples_carry_names_and_metainfo_is_per_dataset(two):
    ds = DATASETS.build(dict(type='MDFConcatDataset', datasets=two,
                             dataset_names=['small', 'large']))
    assert len(ds) == 7 and ds.cumulative_sizes == [2, 7]
    assert [ds[i]['data_samples'].dataset_name for i in (0, 1, 2, 6)] == \
        ['small', 'small', 'large', 'large']
    assert ds.get_data_info(3)['dataset_name'] == 'large'
    meta = ds.metainfo
    assert [m['dataset_name'] for m in meta] == ['small', 'large']
    assert [len(m['classes']) for m in meta] == [3, 4]
    assert meta[0]['cumulative_sizes'] == [2, 7]
    assert dataset_names_of(ds) == ['small', 'large']


def test_multi_source_sampler_draws_every_dataset_each_step(two):
    ds = MDFConcatDataset(two, dataset_names=['small', 'large'])
    sampler = MultiSourceSampler(ds, batch_size=4, source_ratio=[1, 1],
                                 seed=0)
    loader = DataLoader(ds, batch_size=4, sampler=sampler,
                        collate_fn=lambda b: b)
    it = iter(loader)
    seen = {'small': [], 'large': []}
    for _ in range(3):
        batch = next(it)
        names = [b['data_samples'].dataset_name for b in batch]
        assert names == ['small', 'small', 'large', 'large']
        for b in batch:
            seen[b['data_samples'].dataset_name].append(
                b['data_samples'].img_path)
    # 3 steps = one epoch of the large set; the small one repeated
    assert len(set(seen['large'])) == 5 and len(seen['small']) == 6
    assert iters_per_epoch(loader) == 3
    # other ratios: 1 small + 3 large per step -> ceil(5 / 3) = 2 steps
    sampler = MultiSourceSampler(ds, batch_size=4, source_ratio=[1, 3])
    assert sampler.num_per_source == [1, 3]
    assert iters_per_epoch(DataLoader(ds, batch_size=4,
                                      sampler=sampler)) == 2

    # the epoch counted by one dataset: the small one, 2 images a step
    assert iters_per_epoch(loader, epoch_source=0) == 1
    with pytest.raises(ValueError, match='epoch_source=2'):
        iters_per_epoch(loader, epoch_source=2)


class _OneWeight(BaseModel):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=self.w.sum() * 0 + self.w.sum())


def test_loop_gives_epoch_schedulers_its_epoch_length(two, tmp_path):
    """MultiSourceTrainLoop(max_epochs=4, epoch_source=1): 3 steps an epoch
    (5 images, 2 a step); the epoch-based MultiStepLR steps at epochs 2, 3
    = iterations 6, 9 (mmengine alone would use len(dataloader) = 7 // 4)."""
    from mmengine.runner import Runner
    runner = Runner(
        model=_OneWeight(), work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            batch_size=4, num_workers=0,
            sampler=dict(type='mmdet.MultiSourceSampler', batch_size=4,
                         source_ratio=[1, 1]),
            dataset=dict(type='MDFConcatDataset', datasets=two,
                         dataset_names=['small', 'large'])),
        train_cfg=dict(type='MultiSourceTrainLoop', max_epochs=4,
                       epoch_source=1, val_interval_epochs=100),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1.0)),
        param_scheduler=[dict(type='MultiStepLR', by_epoch=True,
                              convert_to_iter_based=True, milestones=[2, 3],
                              gamma=0.1)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=10 ** 6)),
        default_scope='mmseg')
    runner.train()
    assert runner.train_loop.max_iters == 12
    sched = runner.param_schedulers[0]
    assert (sched.by_epoch, sched.begin, sched.end) == (False, 0, 12)
    assert sorted(sched.milestones) == [6, 9]
    # lr 1 for 6 steps, 0.1 for 3, 0.01 for 3: w = 1 - 6 - 0.3 - 0.03
    assert runner.model.w.item() == pytest.approx(1 - 6.33, abs=1e-5)


def test_names_from_the_datasets_and_errors(two, tmp_path):
    with pytest.raises(ValueError, match=r"datasets \['0 \(BaseSegDataset\)"):
        MDFConcatDataset(two)
    with pytest.raises(ValueError, match='duplicate dataset_names'):
        MDFConcatDataset(two, dataset_names=['a', 'a'])
    with pytest.raises(ValueError, match='2 dataset_names'):
        MDFConcatDataset(two + [two[0]], dataset_names=['a', 'b'])
    named = [dict(d, metainfo=dict(d['metainfo'], dataset_name=n))
             for d, n in zip(two, ['vaihingen', 'loveda'])]
    assert MDFConcatDataset(named).dataset_names == ['vaihingen', 'loveda']
    with pytest.raises(ValueError, match="named 'loveda' but dataset_names"):
        MDFConcatDataset(named, dataset_names=['vaihingen', 'potsdam'])


def fake_runner(dataset, heads, metric_names=None):
    model = SimpleNamespace(dataset_names=heads)
    loader = SimpleNamespace(dataset=dataset)
    metric = SimpleNamespace(dataset_names=metric_names)
    evaluator = SimpleNamespace(metrics=[metric] if metric_names else [])
    loop = SimpleNamespace(dataloader=loader, evaluator=evaluator)
    return SimpleNamespace(model=model, train_loop=loop, val_loop=loop,
                           test_loop=loop)


def test_check_hook_names_the_disagreeing_datasets(two):
    ds = MDFConcatDataset(two, dataset_names=['small', 'large'])
    hook = MultiDatasetCheckHook()
    hook.before_train(fake_runner(ds, ['small', 'large'],
                                  ['small', 'large']))
    with pytest.raises(ValueError, match=r"datasets \['large'\] have no "
                       'head'):
        hook.before_train(fake_runner(ds, ['small', 'oem']))
    with pytest.raises(ValueError, match=r"heads \['oem'\] have no "
                       'training dataset'):
        hook.before_train(fake_runner(ds, ['small', 'large', 'oem']))
    MultiDatasetCheckHook(allow_untrained_heads=True).before_train(
        fake_runner(ds, ['small', 'large', 'oem']))
    with pytest.raises(ValueError, match=r"datasets \['large'\] have no "
                       'metric'):
        hook.before_test(fake_runner(ds, ['small', 'large'], ['small']))
    with pytest.raises(ValueError, match=r"metrics for datasets \['oem'\]"):
        hook.before_test(fake_runner(ds, ['small', 'large'],
                                     ['small', 'large', 'oem']))
    plain = DATASETS.build(two[0])
    with pytest.raises(ValueError, match='has no dataset_name'):
        hook.before_test(fake_runner(plain, ['small', 'large']))
    hook.before_test(fake_runner(plain, ['small']))  # one head: fine


def test_check_hook_compares_declared_classes(two):
    """classifier_init.dataset_classes must be the datasets' class lists."""
    ds = MDFConcatDataset(two, dataset_names=['small', 'large'])
    runner = fake_runner(ds, ['small', 'large'])
    runner.model._classifier_init_arg = dict(
        checkpoint_classes=('c0', 'c1', 'c2'),
        dataset_classes=dict(small=('c0', 'c1', 'c2'),
                             large=('c0', 'c1', 'c2', 'c3')))
    MultiDatasetCheckHook().before_train(runner)
    runner.model._classifier_init_arg['dataset_classes']['large'] = (
        'c0', 'c1', 'c3', 'c2')
    with pytest.raises(ValueError, match=r"dataset 'large' has classes"):
        MultiDatasetCheckHook().before_train(runner)
