"""SimpleFeaturePyramid: strides, structure, norm."""
import pytest
import torch
from torch import nn

from s5_mm.models.layers import LayerNorm2d
from s5_mm.models.necks import SimpleFeaturePyramid


def test_strides_and_channels():
    neck = SimpleFeaturePyramid(in_channels=[24] * 4)
    feats = [torch.randn(2, 24, 8, 12) for _ in range(4)]
    outs = neck(feats)
    # stride 16 input -> strides 4, 8, 16, 32
    assert [tuple(o.shape) for o in outs] == [(2, 24, 32, 48), (2, 24, 16, 24),
                                              (2, 24, 8, 12), (2, 24, 4, 6)]
    assert outs[2] is feats[2]  # identity level
    torch.testing.assert_close(outs[3],
                               nn.functional.max_pool2d(feats[3], 2))


def test_structure_matches_spec():
    neck = SimpleFeaturePyramid(in_channels=24)
    kinds = [type(m) for m in neck.fpn1]
    assert kinds == [nn.ConvTranspose2d, LayerNorm2d, nn.GELU,
                     nn.ConvTranspose2d]
    assert [type(m) for m in neck.fpn2] == [nn.ConvTranspose2d]
    assert neck.fpn1[0].kernel_size == (2, 2) and neck.fpn1[0].stride == (2, 2)
    n_params = sum(p.numel() for p in neck.parameters())
    assert n_params == 3 * (24 * 24 * 4 + 24) + 2 * 24


def test_out_channels_and_bn_norm():
    neck = SimpleFeaturePyramid(in_channels=24, out_channels=8,
                                norm_cfg=dict(type='BN'))
    assert isinstance(neck.fpn1[1], nn.BatchNorm2d)
    outs = neck([torch.randn(1, 24, 4, 4) for _ in range(4)])
    assert all(o.shape[1] == 8 for o in outs)


def test_layer_norm_2d_matches_channel_layer_norm():
    ln = LayerNorm2d(6, eps=1e-6)
    nn.init.normal_(ln.weight)
    x = torch.randn(2, 6, 3, 5)
    ref = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6, ), ln.weight,
                                   ln.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref)


def test_errors_and_registries():
    with pytest.raises(ValueError, match='equal width'):
        SimpleFeaturePyramid(in_channels=[8, 16, 32, 64])
    with pytest.raises(ValueError, match='expects 4 feature maps'):
        SimpleFeaturePyramid(8)([torch.randn(1, 8, 2, 2)] * 3)
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    assert SEG.get('SimpleFeaturePyramid') is SimpleFeaturePyramid
    assert DET.get('SimpleFeaturePyramid') is SimpleFeaturePyramid
