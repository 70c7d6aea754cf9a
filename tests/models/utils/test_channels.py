import pytest
import torch
import torch.nn.functional as F

from s5_mm.models.utils.channels import (adapt_patch_embed_channels,
                                         adapt_state_dict_channels)


def test_cycled_kernel_keeps_activation_scale():
    torch.manual_seed(0)
    w = torch.randn(8, 3, 4, 4)
    w6 = adapt_patch_embed_channels(w, 6)
    assert w6.shape == (8, 6, 4, 4)
    assert torch.allclose(w6[:, 4], w[:, 1] * 0.5)
    # an image whose 6 bands repeat RGB gives the RGB activation
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(F.conv2d(torch.cat([x, x], 1), w6, stride=4),
                          F.conv2d(x, w, stride=4), atol=1e-5)
    w1 = adapt_patch_embed_channels(w, 1)
    assert torch.allclose(w1[:, 0], w.sum(1))
    assert torch.equal(adapt_patch_embed_channels(w, 3), w)


def test_band_to_rgb_mapping():
    w = torch.randn(2, 3, 1, 1)
    out = adapt_patch_embed_channels(w, 4, band_to_rgb=[2, None, 0, 1])
    assert torch.equal(out[:, 0], w[:, 2]) and torch.equal(out[:, 2], w[:, 0])
    assert torch.equal(out[:, 1], torch.zeros_like(out[:, 1]))
    with pytest.raises(ValueError, match='entries'):
        adapt_patch_embed_channels(w, 4, band_to_rgb=[0])
    with pytest.raises(ValueError, match='outside'):
        adapt_patch_embed_channels(w, 1, band_to_rgb=[3])


def test_state_dict_and_model_load():
    conv = torch.nn.Conv2d(3, 4, 2, 2)
    sd = adapt_state_dict_channels(conv.state_dict(), 'weight', 5)
    target = torch.nn.Conv2d(5, 4, 2, 2)
    target.load_state_dict(sd)
    assert target.weight.shape[1] == 5
    with pytest.raises(KeyError, match='patch_embed'):
        adapt_state_dict_channels(sd, 'patch_embed.weight', 5)
