"""MoE-MDF under DDP (2 gloo processes on CPU): rank 0 sees only dataset A,
rank 1 only dataset B. With the zero-touch of absent datasets (automatic
when distributed) DDP runs with ``find_unused_parameters=False``: no hang,
no reduction error, and after two SGD steps both ranks hold the weights a
single process gets from the union batch: each dataset's CE is divided by
its global pixel count / world size (s5_mm.models.utils.dist_loss), so DDP's
average of the two ranks' gradients is that of the per-dataset means over
the union batch (with per-rank means it would be half of it)."""

import pytest
import torch
import torch.multiprocessing as mp

from s5_mm.testing.checks import free_port

NAMES = ['potsdam', 'loveda']
CLASSES = dict(potsdam=5, loveda=7)


def _cfg(train_cfg):
    def head(n):
        return dict(type='UPerHead', in_channels=[32] * 4,
                    in_index=[0, 1, 2, 3], pool_scales=(1, 2), channels=16,
                    dropout_ratio=0., num_classes=n,
                    norm_cfg=dict(type='BN', requires_grad=True),
                    align_corners=False,
                    loss_decode=dict(type='CrossEntropyLoss'))
    return dict(
        type='MultiHeadEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.] * 3,
                               std=[1.] * 3, size=(32, 32)),
        backbone=dict(type='S5ViT',
                      arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                out_indices=(0, 1, 1, 1)),
                      img_size=32, patch_size=4, drop_path_rate=0.,
                      num_experts=2, expert_width=8, dataset_names=NAMES),
        neck=dict(type='SimpleFeaturePyramid', in_channels=32),
        decode_head={n: head(c) for n, c in CLASSES.items()},
        train_cfg=train_cfg, test_cfg=dict(mode='whole'))


def _build(train_cfg):
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401
    from s5_mm.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(_cfg(train_cfg)))
    model.init_weights()
    return model


def _batch(name, offset):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(offset)
    inputs, data_samples = [], []
    for i in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(32, 32),
                                        ori_shape=(32, 32),
                                        dataset_name=name))
        s.gt_sem_seg = PixelData(data=torch.randint(
            0, CLASSES[name], (1, 32, 32), generator=g))
        inputs.append(torch.randn(3, 32, 32, generator=g) * 50 + 100)
        data_samples.append(s)
    return dict(inputs=inputs, data_samples=data_samples)


def _optim(model):
    from mmengine.optim import OptimWrapper
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))


STEPS = 2


def _worker(rank, world, port, out, find_unused, touch):
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world)
    try:
        model = _build(dict(touch_unused_params=touch))
        ddp = MMDistributedDataParallel(
            model, device_ids=None, broadcast_buffers=False,
            find_unused_parameters=find_unused)
        optim = _optim(ddp)
        data = _batch(NAMES[rank], rank)
        for _ in range(STEPS):
            logs = ddp.train_step(data, optim)
        assert all(n.startswith(NAMES[rank]) or n == 'loss'
                   for n in logs), logs
        torch.save({k: v.detach().clone()
                    for k, v in model.state_dict().items()},
                   f'{out}/rank{rank}.pth')
    finally:
        dist.destroy_process_group()


def _reference():
    model = _build(dict())
    optim = _optim(model)
    a, b = _batch(NAMES[0], 0), _batch(NAMES[1], 1)
    data = dict(inputs=a['inputs'] + b['inputs'],
                data_samples=a['data_samples'] + b['data_samples'])
    for _ in range(STEPS):
        model.train_step(data, optim)
    return model.state_dict()


@pytest.fixture(scope='module')
def reference():
    return _reference()


@pytest.mark.parametrize('find_unused,touch', [(False, None), (True, False)],
                         ids=['static-graph-zero-touch',
                              'find-unused-parameters'])
def test_ranks_with_disjoint_datasets_sync(tmp_path, reference, find_unused,
                                           touch):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path), find_unused,
                            touch), nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    changed = 0
    for key, ref in reference.items():
        if 'running_' in key or 'num_batches' in key:
            continue  # BN statistics are per rank (broadcast_buffers=False)
        torch.testing.assert_close(r0[key], r1[key], msg=key)
        torch.testing.assert_close(r0[key], ref, rtol=1e-4, atol=1e-5,
                                   msg=key)
        changed += 1
    # the heads of both datasets moved on both ranks
    init = _build(dict())
    for name in NAMES:
        key = f'decode_head.{name}.conv_seg.weight'
        assert not torch.allclose(r0[key], init.state_dict()[key])
    assert changed > 50


def test_without_zero_touch_ddp_reports_the_unused_heads(tmp_path):
    """The failure the zero-touch prevents (so the test above can fail)."""
    with pytest.raises(mp.ProcessRaisedException,
                       match='did not receive grad'):
        mp.spawn(_worker, args=(2, free_port(), str(tmp_path), False,
                                False), nprocs=2, join=True)
