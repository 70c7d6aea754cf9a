"""S5LayerDecayOptimizerConstructor: lr per layer, no-decay groups, and that
the decayed lr is what the optimizer step uses."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import s5_mm  # noqa: F401
from s5_mm.engine.optimizers import get_layer_id
from s5_mm.models.backbones import S5ViT

LR, WD, RATE = 1e-3, 0.05, 0.9


class Toy(nn.Module):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = S5ViT(arch='tiny',
                              img_size=16,
                              patch_size=4,
                              drop_path_rate=0.)
        self.decode_head = nn.Conv2d(64, 3, 1)

    def forward(self, x):
        return sum(self.decode_head(f).mean() for f in self.backbone(x))


def build(model, **paramwise):
    init_default_scope('mmseg')
    cfg = dict(type='OptimWrapper',
               optimizer=dict(type='AdamW', lr=LR, weight_decay=WD),
               constructor='S5LayerDecayOptimizerConstructor',
               paramwise_cfg=paramwise)
    return build_optim_wrapper(model, cfg)


def group_of(optim, param):
    (group, ) = [
        g for g in optim.param_groups if any(p is param for p in g['params'])
    ]
    return group


def test_layer_ids():
    assert get_layer_id('backbone.patch_embed.proj.weight', 12) == 0
    assert get_layer_id('backbone.pos_embed', 12) == 0
    assert get_layer_id('backbone.blocks.0.attn.qkv.weight', 12) == 1
    assert get_layer_id('student.backbone.blocks.11.norm1.bias', 12) == 12
    assert get_layer_id('decode_head.conv_seg.weight', 12) == 13
    assert get_layer_id('neck.fpn1.0.weight', 12) == 13


def test_lr_and_weight_decay_per_group():
    model = Toy()
    optim = build(model, num_layers=4, layer_decay_rate=RATE).optimizer
    bb = model.backbone
    g = group_of(optim, bb.blocks[0].attn.qkv.weight)
    assert g['lr'] == pytest.approx(LR * RATE**4) and g['weight_decay'] == WD
    g = group_of(optim, bb.blocks[3].mlp.fc1.weight)
    assert g['lr'] == pytest.approx(LR * RATE)
    g = group_of(optim, model.decode_head.weight)
    assert g['lr'] == pytest.approx(LR) and g['weight_decay'] == WD
    g = group_of(optim, bb.patch_embed.proj.weight)
    assert g['lr'] == pytest.approx(LR * RATE**5) and g['weight_decay'] == WD
    for p in (bb.pos_embed, bb.blocks[0].norm1.weight,
              bb.blocks[2].attn.qkv.bias, model.decode_head.bias):
        assert group_of(optim, p)['weight_decay'] == 0.
    # every trainable parameter exactly once; the frozen cls_token not at all
    params = [p for g in optim.param_groups for p in g['params']]
    assert len(params) == len({id(p) for p in params})
    assert {id(p)
            for p in params
            } == {id(p)
                  for p in model.parameters() if p.requires_grad}


def test_decayed_lr_is_applied_by_the_step():
    model = Toy()
    wrapper = build(model)  # defaults: rate 0.9, depth read from the model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = model(torch.randn(2, 3, 16, 16))
    wrapper.update_params(loss)
    after = dict(model.named_parameters())

    def step(name):  # Adam's first step moves each weight by ~lr
        return (after[name] - before[name]).abs().max().item()

    head = step('decode_head.bias')  # no weight decay, lr = LR
    block0 = step('backbone.blocks.0.norm1.bias')
    assert head == pytest.approx(LR, rel=1e-2)
    assert block0 == pytest.approx(LR * RATE**4, rel=1e-2)


def test_config_errors():
    with pytest.raises(ValueError,
                       match='num_layers=2 but the backbone has 4'):
        build(Toy(), num_layers=2)
    with pytest.raises(KeyError, match='unknown paramwise_cfg keys'):
        build(Toy(), layer_decay=0.9)
