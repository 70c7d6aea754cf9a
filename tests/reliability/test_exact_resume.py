"""2N iterations = N + resume + N, with random augmentation and model-side
randomness: per-sample pipeline seeds (SeededDataset + seeded samplers) and
IterSeedHook. The unseeded variant shows the test can fail."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import s5_mm  # noqa: F401
from s5_mm.testing import (tiny_segmentor_cfg, toy_iter_schedule,
                           toy_s4p_random_pipelines)

DEFAULT_SCOPE = 'mmseg'
CLASSES = ('a', 'b', 'c')


def s4p_cfg(root, work_dir, max_iters, teacher, seeded, resume=False,
            workers=0):
    # random crop + flip on both branches, photometric noise on the strong
    # view: each draws from the pipeline's generators
    sup, unsup = toy_s4p_random_pipelines()
    seg = tiny_segmentor_cfg(num_classes=3, mean=0.0, std=1.0,
                             downsample=True)
    seg['decode_head']['dropout_ratio'] = 0.3  # model-side randomness
    seg['data_preprocessor'].update(size=(16, 16))
    dataset = dict(
        type='ConcatDataset',
        ignore_keys=['classes', 'palette', 'label_map', 'reduce_zero_label'],
        datasets=[
            dict(type='BaseSegDataset', data_root=str(root),
                 metainfo=dict(classes=CLASSES), img_suffix='.png',
                 seg_map_suffix='.png',
                 data_prefix=dict(img_path='img', seg_map_path='ann'),
                 pipeline=sup),
            dict(type='UnlabeledImageDataset', data_root=str(root),
                 data_prefix=dict(img_path='unl'), pipeline=unsup),
        ])
    sampler = dict(type='mmdet.MultiSourceSampler', batch_size=4,
                   source_ratio=[2, 2])
    hooks = []
    if seeded:
        dataset = dict(type='SeededDataset', dataset=dataset)
        sampler['type'] = 'SeededMultiSourceSampler'
        hooks = [dict(type='IterSeedHook')]
    return Config(dict(
        default_scope='mmseg',
        work_dir=str(work_dir),
        model=dict(
            type='S4PSegmentor', segmentor=seg,
            semi_train_cfg=dict(teacher=teacher, ema_momentum=0.2,
                                conf_thresh=0.34, cutmix_prob=1.0)),
        train_dataloader=dict(batch_size=4, num_workers=workers,
                              sampler=sampler,
                              dataset=dataset),
        **toy_iter_schedule(max_iters, total_iters=6, ckpt_interval=3),
        custom_hooks=hooks,
        randomness=dict(seed=0),
        resume=resume,
        load_from=str(work_dir / 'iter_3.pth') if resume else None))


def train(cfg):
    Runner.from_cfg(cfg).train()


def differing(a, b):
    return [k for k in a if not torch.equal(a[k], b[k])]


def straight_and_resumed(root, tmp_path, teacher, seeded, workers=0):
    kw = dict(teacher=teacher, seeded=seeded, workers=workers)
    train(s4p_cfg(root, tmp_path / 'a', 6, **kw))
    train(s4p_cfg(root, tmp_path / 'b', 3, **kw))
    train(s4p_cfg(root, tmp_path / 'b', 6, resume=True, **kw))
    return [torch.load(tmp_path / run / 'iter_6.pth', map_location='cpu',
                       weights_only=False) for run in ('a', 'b')]


@pytest.mark.parametrize('teacher,workers', [('self', 0), ('ema', 0),
                                             ('self', 2)])
def test_s4p_resume_is_exact(toy_seg_data, tmp_path, teacher, workers):
    # workers: the pipeline runs in other processes, whose generators the
    # checkpoint never saw
    a, b = straight_and_resumed(toy_seg_data, tmp_path, teacher, True,
                                workers)
    sa, sb = a['state_dict'], b['state_dict']
    assert sa.keys() == sb.keys()
    assert any(k.startswith('teacher.') for k in sa) == (teacher == 'ema')
    # CPU, one process, same op order: bit-exact, no tolerance
    assert differing(sa, sb) == []
    for pa, pb in zip(a['optimizer']['state'].values(),
                      b['optimizer']['state'].values()):
        assert int(pa['step']) == int(pb['step']) == 6
        assert torch.equal(pa['exp_avg_sq'], pb['exp_avg_sq'])
    assert a['param_schedulers'] == b['param_schedulers']
    assert a['message_hub']['log_scalars']['train/loss'].current() == \
        b['message_hub']['log_scalars']['train/loss'].current()


def test_unseeded_pipeline_resume_differs(toy_seg_data, tmp_path):
    # Without per-sample seeds the resumed run sees other augmentations:
    # the failure the seeded run fixes (and proof this test can fail).
    a, b = straight_and_resumed(toy_seg_data, tmp_path, 'self', False)
    assert differing(a['state_dict'], b['state_dict'])
