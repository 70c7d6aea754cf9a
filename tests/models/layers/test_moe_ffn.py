"""MoEFFN: plain mode, routing, expert split."""
import pytest
import torch
import torch.nn.functional as F

from s5_mm.models.layers import ExpertRouting, MoEFFN, split_plain_fc2


def make(num_experts=3, p=4):
    torch.manual_seed(0)
    return MoEFFN(16, 64, num_experts=num_experts, expert_width=p)


def test_plain_is_a_vit_mlp():
    ffn = make(num_experts=0)
    x = torch.randn(2, 5, 16)
    ref = ffn.fc2(F.gelu(ffn.fc1(x)))
    torch.testing.assert_close(ffn(x), ref)
    assert not hasattr(ffn, 'experts')


def test_output_is_concat_of_shared_and_expert():
    ffn = make()
    x = torch.randn(2, 5, 16)
    h = F.gelu(ffn.fc1(x))
    for d in range(3):
        ref = torch.cat([ffn.fc2_shared(h), ffn.experts[d](h)], -1)
        torch.testing.assert_close(ffn(x, torch.tensor([d, d])), ref)
    assert ffn.fc2_shared.out_features == 12
    assert ffn.experts[0].out_features == 4


def test_mixed_batch_matches_per_sample_and_grads_stay_in_expert():
    ffn = make()
    x = torch.randn(4, 5, 16)
    ids = torch.tensor([1, 0, 1, 1])
    out = ffn(x, ids)
    for i in range(4):
        torch.testing.assert_close(out[i:i + 1], ffn(x[i:i + 1], ids[i:i + 1]))
    out.sum().backward()
    assert ffn.experts[2].weight.grad is None  # unused expert
    assert ffn.experts[0].weight.grad.abs().sum() > 0
    assert ffn.experts[1].weight.grad.abs().sum() > 0


def test_routing_groups():
    r = ExpertRouting.build(torch.tensor([2, 2, 2]), 3)
    assert r.groups == [(2, None)] and r.inverse is None
    r = ExpertRouting.build([1, 0, 1], 3)
    assert [(d, idx.tolist()) for d, idx in r.groups] == [(0, [1]),
                                                          (1, [0, 2])]
    # concatenated order is [1, 0, 2]; inverse restores [0, 1, 2]
    assert r.inverse.tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match='entries but the batch has'):
        ExpertRouting.build(torch.tensor([0, 1]), 3, batch_size=3)
    with pytest.raises(ValueError, match='integer'):
        ExpertRouting.build(torch.tensor([0.5]), 3)


def test_split_plain_fc2():
    w, b = torch.randn(16, 64), torch.randn(16)
    state = {'m.fc2.weight': w, 'm.fc2.bias': b}
    split_plain_fc2(state, 'm.', num_experts=2, expert_width=4)
    assert 'm.fc2.weight' not in state
    torch.testing.assert_close(state['m.fc2_shared.weight'], w[:12])
    torch.testing.assert_close(state['m.experts.1.weight'], w[12:])
    torch.testing.assert_close(state['m.experts.0.bias'], b[12:])
    with pytest.raises(ValueError, match='cannot split'):
        split_plain_fc2({'fc2.weight': w}, '', 2, 16)


def test_bad_expert_width():
    with pytest.raises(ValueError, match='expert_width'):
        MoEFFN(16, 64, num_experts=2, expert_width=16)


def test_dataset_a_never_touches_expert_b():
    ffn = make()
    x = torch.randn(3, 5, 16)
    ids = torch.tensor([2, 2, 2])
    ref = ffn(x, ids)
    ref.square().sum().backward()
    for d in (0, 1):
        assert ffn.experts[d].weight.grad is None
        assert ffn.experts[d].bias.grad is None
    assert ffn.experts[2].weight.grad.abs().sum() > 0
    with torch.no_grad():  # other experts' weights do not reach A's output
        for d in (0, 1):
            ffn.experts[d].weight.mul_(5.)
            ffn.experts[d].bias.add_(1.)
        torch.testing.assert_close(ffn(x, ids), ref, rtol=0, atol=0)


def test_mixed_batch_output_of_a_ignores_expert_b():
    ffn = make()
    x = torch.randn(4, 5, 16)
    ids = torch.tensor([0, 1, 0, 2])
    with torch.no_grad():
        ref = ffn(x, ids)
        ffn.experts[1].weight.mul_(5.)
        out = ffn(x, ids)
    a = ids != 1
    torch.testing.assert_close(out[a], ref[a], rtol=0, atol=0)
    assert not torch.allclose(out[1], ref[1])
    # the shared channels of the B sample do not depend on expert B either
    torch.testing.assert_close(out[1, :, :12], ref[1, :, :12], rtol=0, atol=0)


def test_routing_groups_ascending_expert_order():
    r = ExpertRouting.build([2, 0, 2, 1], 3)
    assert [(d, idx.tolist()) for d, idx in r.groups] == [(0, [1]), (1, [3]),
                                                          (2, [0, 2])]
    assert r.inverse.tolist() == [2, 0, 3, 1]
    with pytest.raises(ValueError, match=r'dataset ids \[-1\] out of range'):
        ExpertRouting.build([0, -1], 3)
