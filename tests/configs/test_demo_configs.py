"""configs/demo: the S4P demo and its supervised baseline share one model,
labelled data and schedule (_base_/schedules/schedule_demo_1k.py); the
foundation demo stretches that schedule to 1500 iterations; and
tools/run_s4p_demo.py --iters stretches the configs' own scheduler."""
from pathlib import Path

import pytest
from mmengine.config import Config

from s5_mm.testing import load_tool

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
S4P = CONFIGS / 'demo/s4p_vit-tiny_landcover.py'
SUP = CONFIGS / 'demo/s4p-supervised_vit-tiny_landcover.py'
FOUNDATION = CONFIGS / 'demo/upernet_vit-tiny_landcover.py'
SCHEDULE = CONFIGS / '_base_/schedules/schedule_demo_1k.py'
SCHEDULE_KEYS = ('max_iters', 'optim_wrapper', 'param_scheduler', 'train_cfg',
                 'val_cfg', 'test_cfg', 'default_hooks')


def load(path):
    return Config.fromfile(str(path)).to_dict()


def sched(cfg):
    return [(s['type'], s['begin'], s['end']) for s in cfg.param_scheduler]


def test_s4p_demo_and_baseline_share_the_schedule():
    base = load(SCHEDULE)
    for path in (S4P, SUP):
        cfg = load(path)
        for key in SCHEDULE_KEYS:
            if path == S4P and key == 'test_cfg':
                # the S4P demo tests student and EMA teacher in one loop
                assert cfg[key] == dict(type='S4PTeacherStudentTestLoop')
                continue
            assert cfg[key] == base[key], (path.name, key)
    assert base['train_cfg']['max_iters'] == 1000
    assert [(s['type'], s['begin'], s['end']) for s in base['param_scheduler']
            ] == [('LinearLR', 0, 100), ('CosineAnnealingLR', 100, 1000)]


def test_s4p_demo_and_baseline_share_model_and_labelled_data():
    s4p, sup = load(S4P), load(SUP)
    assert s4p['model']['segmentor'] == sup['model']
    assert sup['model']['decode_head']['loss_decode']['avg_non_ignore']
    # both training sets in SeededDataset, with seeded samplers
    for cfg in (s4p, sup):
        assert cfg['train_dataloader']['dataset']['type'] == 'SeededDataset'
        assert cfg['train_dataloader']['sampler']['type'].startswith('Seeded')
        assert cfg['custom_hooks'][0]['type'] == 'IterSeedHook'
    lab = s4p['train_dataloader']['dataset']['dataset']['datasets'][0]
    sup_ds = sup['train_dataloader']['dataset']['dataset']
    for key in ('type', 'data_root', 'ann_file', 'data_prefix'):
        assert lab[key] == sup_ds[key], key
    # the same labelled images per step
    assert s4p['train_dataloader']['sampler']['source_ratio'][0] == \
        sup['train_dataloader']['batch_size'] == 8
    # the supervised pipeline is the S4P labelled branch, unpacked
    assert sup_ds['pipeline'][:-1] == lab['pipeline'][:-1]
    assert lab['pipeline'][-1]['sup'] == [sup_ds['pipeline'][-1]]


def test_foundation_demo_stretches_the_schedule():
    cfg = Config.fromfile(str(FOUNDATION))
    assert cfg.train_cfg.max_iters == 1500
    assert cfg.train_cfg.val_interval == 500
    assert sched(cfg) == [('LinearLR', 0, 100),
                          ('CosineAnnealingLR', 100, 1500)]
    ckpt = cfg.default_hooks.checkpoint
    assert (ckpt.interval, ckpt.save_best) == (500, 'mIoU')
    assert cfg.optim_wrapper == Config.fromfile(str(SCHEDULE)).optim_wrapper
    assert 'ann_file' not in cfg.train_dataloader.dataset.dataset  # all tiles


@pytest.mark.parametrize('iters,expected', [
    (2, [('LinearLR', 0, 1), ('CosineAnnealingLR', 1, 2)]),
    (50, [('LinearLR', 0, 5), ('CosineAnnealingLR', 5, 50)]),
    (3000, [('LinearLR', 0, 300), ('CosineAnnealingLR', 300, 3000)]),
])
def test_stretch_schedule_scales_the_configs_scheduler(iters, expected):
    demo = load_tool('run_s4p_demo.py')
    for path in (S4P, SUP):
        cfg = Config.fromfile(str(path))
        demo.stretch_schedule(cfg, iters)
        assert sched(cfg) == expected
        assert cfg.train_cfg.max_iters == iters
        assert cfg.train_cfg.val_interval == iters
        assert cfg.default_hooks.checkpoint.interval == iters


def test_stretch_schedule_scales_t_max_and_intervals():
    demo = load_tool('run_s4p_demo.py')
    cfg = Config.fromfile(str(CONFIGS / 's4p/vit-b_rs4p1m.py'))
    demo.stretch_schedule(cfg, 1200)  # 120k -> 1.2k: 1 %
    (s, ) = cfg.param_scheduler
    assert (s.begin, s.end, s.T_max) == (0, 1200, 1200)
    assert cfg.train_cfg.val_interval == 20
    assert cfg.default_hooks.checkpoint.interval == 20
    cfg.param_scheduler[0].by_epoch = True
    with pytest.raises(ValueError, match='CosineAnnealingLR'):
        demo.stretch_schedule(cfg, 100)


def test_build_cfg_keeps_the_schedule_without_iters(tmp_path):
    demo = load_tool('run_s4p_demo.py')
    split = dict(labelled_list='l.txt',
                 unlabelled_list='u.txt',
                 label_dir='ann_dir/train_sparse')
    cfg = demo.build_cfg(S4P, tmp_path, split, tmp_path / 'w', 3, None, {})
    assert sched(cfg) == [('LinearLR', 0, 100),
                          ('CosineAnnealingLR', 100, 1000)]
    lab, unl = cfg.train_dataloader.dataset.dataset.datasets
    assert (lab.ann_file, unl.ann_file) == ('l.txt', 'u.txt')
    assert lab.data_prefix.seg_map_path == 'ann_dir/train_sparse'
    cfg = demo.build_cfg(SUP, tmp_path, split, tmp_path / 'w', 3, 10, {})
    assert sched(cfg) == [('LinearLR', 0, 1), ('CosineAnnealingLR', 1, 10)]
