"""S5ViT: shapes, pos-embed resizing, MoE routing and init, checkpointing."""
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from s5_mm.models.backbones import S5ViT
from s5_mm.models.backbones.vit import ARCH_SETTINGS, adapt_pos_embed
from s5_mm.testing import build_tiny_vit, tiny_vit_arch

SMALL = tiny_vit_arch(num_layers=4, out_indices=(0, 1, 2, 3))


# 4x4 patch grid; keywords override (img_size too)
small_vit = partial(build_tiny_vit, arch=SMALL, img_size=64, patch_size=16)


@pytest.mark.parametrize('hw', [(512, 512), (384, 640)])
def test_output_shapes_patch16(hw):
    model = small_vit(img_size=512)
    outs = model(torch.randn(1, 3, *hw))
    assert len(outs) == 4
    for o in outs:
        assert o.shape == (1, 32, hw[0] // 16, hw[1] // 16)


def test_tiny_preset_multispectral():
    model = S5ViT(arch='tiny', img_size=32, patch_size=4, in_channels=6)
    assert model.embed_dims == 64 and model.out_indices == (0, 1, 2, 3)
    outs = model(torch.randn(2, 6, 24, 40))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 6, 10)] * 4


@pytest.mark.parametrize('arch,dims,depth,heads,idx', [
    ('b', 768, 12, 12, (3, 5, 7, 11)),
    ('l', 1024, 24, 16, (7, 11, 15, 23)),
    ('h', 1280, 32, 16, (15, 23, 27, 31)),
])
def test_presets(arch, dims, depth, heads, idx):
    with torch.device('meta'):
        model = S5ViT(arch=arch)
    assert (model.embed_dims, model.num_layers, model.num_heads,
            model.out_indices) == (dims, depth, heads, idx)
    assert model.blocks[0].attn.qkv.bias is not None
    assert model.blocks[0].mlp.fc1.out_features == 4 * dims
    assert model.pos_embed.shape == (1, 32 * 32, dims)
    assert ARCH_SETTINGS[arch]['out_indices'] == idx


def test_bad_inputs():
    model = small_vit()
    with pytest.raises(ValueError, match='not divisible by the patch size'):
        model(torch.randn(1, 3, 64, 60))
    with pytest.raises(KeyError, match='unknown S5ViT arch'):
        S5ViT(arch='xl')
    with pytest.raises(ValueError, match='dataset_names has 2 names'):
        S5ViT(arch=SMALL, num_experts=3, dataset_names=['a', 'b'])


def test_registered_in_seg_and_det():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    assert SEG.get('S5ViT') is S5ViT and DET.get('S5ViT') is S5ViT


def test_attention_uses_sdpa_and_matches_reference(monkeypatch):
    model = small_vit()
    attn = model.blocks[0].attn
    x = torch.randn(2, 10, 32)
    calls = []
    orig = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return orig(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', spy)
    out = attn(x)
    assert calls == [(2, 2, 10, 16)]
    # reference: explicit softmax attention
    q, k, v = attn.qkv(x).reshape(2, 10, 3, 2, 16).permute(2, 0, 3, 1, 4)
    w = (q @ k.transpose(-1, -2) / 4.).softmax(-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 10, 32))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_pos_embed_resized_at_forward_time():
    small = small_vit(img_size=64)  # 4x4 grid
    big = small_vit(img_size=128)  # 8x8 grid
    state = small.state_dict()
    state['pos_embed'] = small.resize_pos_embed((8, 8)).detach()
    big.load_state_dict(state)
    x = torch.randn(1, 3, 128, 128)
    # same weights: interpolating at forward time == storing the resized one
    for a, b in zip(small(x), big(x)):
        torch.testing.assert_close(a, b)
    # the resize is bicubic on the (C, h, w) grid
    grid = small.pos_embed.reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, size=(8, 6), mode='bicubic',
                        align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(small.resize_pos_embed((8, 6)), ref)
    # the pre-training grid is used as is
    assert small.resize_pos_embed((4, 4)) is small.pos_embed
    # and it matters: a different position embedding changes the output
    big.pos_embed.data.add_(1.)
    assert not torch.allclose(small(x)[0], big(x)[0])


def test_checkpoint_pos_embed_with_cls_slot_and_other_grid_is_adapted():
    model = small_vit(img_size=64)
    src = torch.randn(1, 1 + 2 * 2, 32)  # class token + 2x2 grid
    state = model.state_dict()
    state['pos_embed'] = src
    model.load_state_dict(state)
    grid = src[:, 1:].reshape(1, 2, 2, 32).permute(0, 3, 1, 2)
    ref = F.interpolate(grid, size=(4, 4), mode='bicubic',
                        align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.pos_embed.data, ref)
    with pytest.raises(ValueError, match='not a square grid'):
        adapt_pos_embed(torch.randn(1, 7, 32), (4, 4))


def test_moe_requires_ids_unless_single_expert():
    moe = small_vit(num_experts=3, expert_width=8)
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError, match='pass dataset_ids'):
        moe(x)
    with pytest.raises(ValueError, match='out of range'):
        moe(x, torch.tensor([0, 3]))
    single = small_vit(num_experts=1, expert_width=8)
    torch.testing.assert_close(
        single(x)[3],
        single(x, torch.tensor([0, 0]))[3])


def test_moe_init_from_plain_checkpoint_equals_plain_model():
    plain = small_vit()
    moe = small_vit(num_experts=3, expert_width=8)
    # strict load: the plain fc2 is split into shared + experts on load
    moe.load_state_dict(plain.state_dict(), strict=True)
    blk = moe.blocks[2].mlp
    torch.testing.assert_close(blk.fc2_shared.weight,
                               plain.blocks[2].mlp.fc2.weight[:24])
    torch.testing.assert_close(blk.experts[1].bias,
                               plain.blocks[2].mlp.fc2.bias[24:])
    x = torch.randn(3, 3, 64, 64)
    ref = plain(x)
    for d in range(3):
        out = moe(x, torch.full((3, ), d))
        for a, b in zip(out, ref):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(moe(x, torch.tensor([2, 0, 1])), ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_moe_init_through_pretrained_init_cfg(tmp_path):
    plain = small_vit()
    ckpt = tmp_path / 'plain.pth'
    torch.save(
        {
            'state_dict': {
                f'backbone.{k}': v
                for k, v in plain.state_dict().items()
            }
        }, ckpt)
    moe = S5ViT(arch=SMALL,
                img_size=64,
                drop_path_rate=0.,
                num_experts=2,
                expert_width=8,
                init_cfg=dict(type='Pretrained',
                              checkpoint=str(ckpt),
                              prefix='backbone.')).eval()
    moe.init_weights()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(moe(x, torch.tensor([1, 0]))[3],
                               plain(x)[3],
                               rtol=1e-5,
                               atol=1e-5)


def test_mixed_dataset_batch_equals_per_dataset_computation():
    moe = small_vit(num_experts=3, expert_width=8)
    for blk in moe.blocks:  # make the experts differ
        for e in blk.mlp.experts:
            torch.nn.init.normal_(e.weight, std=0.1)
    x = torch.randn(5, 3, 64, 64)
    ids = torch.tensor([2, 0, 2, 1, 0])
    mixed = moe(x, ids)
    for i in range(5):
        single = moe(x[i:i + 1], ids[i:i + 1])
        for a, b in zip(mixed, single):
            torch.testing.assert_close(a[i:i + 1], b, rtol=1e-5, atol=1e-5)
    other = moe(x, torch.tensor([0, 0, 0, 0, 0]))
    assert not torch.allclose(other[3][0], mixed[3][0])  # experts matter


def test_dataset_names_to_ids():
    moe = small_vit(num_experts=2,
                    expert_width=8,
                    dataset_names=['dior', 'dota'])
    ids = moe.dataset_ids_from_names(['dota', 'dior', 'dota'])
    assert ids.tolist() == [1, 0, 1] and ids.dtype == torch.long
    with pytest.raises(KeyError, match="unknown dataset name.*'isaid'"):
        moe.dataset_ids_from_names(['isaid'])


def test_with_cp_same_result_and_grads_all_used():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for with_cp in (False, True):
        model = small_vit(with_cp=with_cp).train()
        out = model(x)
        sum(o.square().mean() for o in out).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        if name == 'cls_token':  # frozen, kept for checkpoints and counts
            assert g is None and grads[1][name] is None
            continue
        assert g is not None, f'{name} gets no gradient'
        torch.testing.assert_close(g, grads[1][name], rtol=1e-4, atol=1e-6)


def test_drop_path_linear_schedule():
    model = S5ViT(arch=SMALL, img_size=64, drop_path_rate=0.3)
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in model.blocks]
    assert rates == pytest.approx([0., 0.1, 0.2, 0.3])
