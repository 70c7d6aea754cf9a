"""Split-independent loss normalisers (s5_mm.models.utils.dist_loss): the
avg factor is the one mmseg's CE divides by, the helpers are the identity
in one process, and on 2 gloo processes the counts add up and uneven
tensors gather (the 2-vs-1 training runs: tests/reliability/
test_multi_process.py)."""
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmseg.models.losses import CrossEntropyLoss

from s5_mm.models.utils.dist_loss import (ce_avg_factor, ce_avg_factors,
                                          gather_flat, global_mean_counts,
                                          globalise_factors, world_size)

IGNORE = 255


def _batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    label = torch.randint(0, 3, (2, 4, 5), generator=g)
    label[0, :2] = IGNORE
    return logits, label


def _class_weight_sum(label):
    w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    return float(w[label[label != IGNORE]].sum())


@pytest.mark.parametrize('kw,expected', [
    (dict(), lambda label: 40.),  # 2 x 4 x 5 pixels
    (dict(avg_non_ignore=True), lambda label: 30.),  # 10 ignored
    (dict(class_weight=[0.5, 1.0, 2.0]), _class_weight_sum),
], ids=['all-pixels', 'non-ignored', 'class-weight'])
def test_avg_factor_is_mmsegs_divisor(kw, expected):
    logits, label = _batch()
    loss = CrossEntropyLoss(**kw)
    default = loss(logits, label, ignore_index=IGNORE)
    factor = ce_avg_factor(loss, label, IGNORE)
    assert float(factor) == expected(label)
    # the same loss through the pre-hook that passes the factor
    with ce_avg_factors([(loss, factor)]):
        hooked = loss(logits, label, ignore_index=IGNORE)
    torch.testing.assert_close(hooked, default, rtol=1e-6, atol=0)
    assert hooked.dtype == torch.float32
    # the hook is gone after the block: factor 1 would give the sum
    with ce_avg_factors([(loss, torch.tensor(1.))]):
        summed = loss(logits, label, ignore_index=IGNORE)
    assert float(summed) == pytest.approx(float(default) * float(factor),
                                          rel=1e-5)
    assert torch.equal(loss(logits, label, ignore_index=IGNORE), default)


def test_single_process_is_identity():
    assert world_size() == 1
    c = torch.tensor(7)
    assert global_mean_counts(c) is c
    assert globalise_factors([(torch.nn.Identity(), c)]) == []
    a, b = gather_flat(torch.ones(2, 3), torch.zeros(2, 3), pad_values=(0, 1))
    assert a.shape == b.shape == (6, )


def _worker(rank, port, out):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        counts = global_mean_counts(torch.tensor([3., 10. * rank]))
        # rank 0 holds 2 pixels, rank 1 holds 3: rank 0 pads
        conf = torch.arange(2 + rank, dtype=torch.float32) + 10 * rank
        label = torch.full((2 + rank, ), rank)
        g_conf, g_label = gather_flat(conf, label, pad_values=(0., 9))
        torch.save(dict(counts=counts, conf=g_conf, label=g_label),
                   f'{out}/rank{rank}.pth')
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_sum_counts_and_gather_uneven(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        r = torch.load(tmp_path / f'rank{rank}.pth')
        # (3 + 3) / 2 and (0 + 10) / 2: global count / world size
        assert r['counts'].tolist() == [3., 5.]
        assert r['counts'].dtype == torch.float64
        assert r['conf'].tolist() == [0., 1., 0., 10., 11., 12.]
        assert r['label'].tolist() == [0, 0, 9, 1, 1, 1]
