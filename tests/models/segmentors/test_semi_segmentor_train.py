"""S4PSegmentor inside an mmengine Runner: MultiBranch + MultiSourceSampler
data, EMA teacher, checkpoints, and resume equality."""

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import s5_mm  # noqa: F401
from s5_mm.testing import (tiny_segmentor_cfg, toy_iter_schedule,
                           toy_s4p_pipelines)

CLASSES = ('a', 'b', 'c')


def s4p_cfg(root, work_dir, max_iters, name, teacher='ema', resume=False):
    # Deterministic data: the same resume with random augmentation, which
    # needs the seeded samplers, is tests/reliability/test_exact_resume.py.
    sup, unsup = toy_s4p_pipelines(
        [dict(type='CenterCrop', crop_size=(16, 16))])
    seg = tiny_segmentor_cfg(num_classes=3, mean=0.0, std=1.0,
                             downsample=True)
    # unlabelled images 12 and 14 px high are padded to 16
    seg['data_preprocessor'].update(size=(16, 16))
    return Config(dict(
        default_scope='mmseg',
        experiment_name=name,
        work_dir=str(work_dir),
        model=dict(
            type='S4PSegmentor',
            segmentor=seg,
            semi_train_cfg=dict(teacher=teacher, ema_momentum=0.2,
                                conf_thresh=0.34, cutmix_prob=1.0)),
        train_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='mmdet.MultiSourceSampler', batch_size=4,
                         source_ratio=[2, 2]),
            dataset=dict(
                type='ConcatDataset',
                ignore_keys=['classes', 'palette', 'label_map',
                             'reduce_zero_label'],
                datasets=[
                    dict(type='BaseSegDataset', data_root=str(root),
                         metainfo=dict(classes=CLASSES),
                         img_suffix='.png', seg_map_suffix='.png',
                         data_prefix=dict(img_path='img',
                                          seg_map_path='ann'),
                         pipeline=sup),
                    dict(type='UnlabeledImageDataset', data_root=str(root),
                         data_prefix=dict(img_path='unl'), pipeline=unsup),
                ])),
        **toy_iter_schedule(max_iters, total_iters=4, ckpt_interval=2),
        custom_hooks=[dict(type='S4PStatsHook', interval=1)],
        randomness=dict(seed=0),
        resume=resume,
        load_from=str(work_dir / 'iter_2.pth') if resume else None,
    ))


def load_state(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_resume_equals_straight_run_with_ema_teacher(toy_seg_data, tmp_path):
    straight = Runner.from_cfg(
        s4p_cfg(toy_seg_data, tmp_path / 'a', 4, 's4p_straight'))
    straight.train()
    hub = straight.message_hub
    assert hub.get_scalar('train/unsup_mask_ratio').current() > 0
    assert hub.get_scalar('train/unsup_loss_ce').current() > 0
    shares = [hub.get_scalar(f'train/pl_share/{c}').current()
              for c in CLASSES]
    assert sum(shares) == pytest.approx(1.0)

    Runner.from_cfg(
        s4p_cfg(toy_seg_data, tmp_path / 'b', 2, 's4p_half')).train()
    Runner.from_cfg(
        s4p_cfg(toy_seg_data, tmp_path / 'b', 4, 's4p_resumed',
                resume=True)).train()

    a = load_state(tmp_path / 'a' / 'iter_4.pth')
    b = load_state(tmp_path / 'b' / 'iter_4.pth')
    half = load_state(tmp_path / 'b' / 'iter_2.pth')
    sa, sb = a['state_dict'], b['state_dict']
    assert any(k.startswith('teacher.') for k in sa)
    assert sa.keys() == sb.keys()
    moved = 0
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), rtol=1e-5,
                              atol=1e-6), k
        moved += int(not torch.equal(sa[k], half['state_dict'][k]))
    assert moved > 10  # iterations 3-4 changed student and teacher
    # teacher is an EMA of the student, not a copy, after 4 iterations
    t = sa['teacher.decode_head.conv_seg.weight']
    s = sa['student.decode_head.conv_seg.weight']
    assert not torch.allclose(t, s)
    step_a = next(iter(a['optimizer']['state'].values()))['step']
    assert int(step_a) == 4
