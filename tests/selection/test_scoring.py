"""Entropy and pooled feature on hand-made maps with known answers."""
import math

import numpy as np
import pytest
import torch

from s5_mm.selection.scoring import (foreground_entropy, pixel_entropy,
                                     pooled_feature)


def _probs(*pixels):
    """(1, K, 1, P) from P per-pixel distributions."""
    return torch.tensor(pixels, dtype=torch.float64).T[None, :, None, :]


def h(*p):
    return -sum(x * math.log(x) for x in p if x > 0)


def test_background_excluded_vs_included():
    # pixel 1: [bg .5, a .5, b 0]; pixel 2: [bg .2, a .3, b .5]
    probs = _probs([0.5, 0.5, 0.0], [0.2, 0.3, 0.5])
    fg = foreground_entropy(probs, bg_index=0)
    every = foreground_entropy(probs, bg_index=None)
    # no renormalisation: the background term is just left out
    fg_ref = (-(0.5 * math.log(0.5)) + h(0.3, 0.5)) / 2
    all_ref = (h(0.5, 0.5) + h(0.2, 0.3, 0.5)) / 2
    assert fg.item() == pytest.approx(fg_ref, abs=1e-6)
    assert every.item() == pytest.approx(all_ref, abs=1e-6)
    assert every.item() - fg.item() == pytest.approx(
        -(0.5 * math.log(0.5) + 0.2 * math.log(0.2)) / 2, abs=1e-6)


def test_other_background_index_and_confident_pixels():
    probs = _probs([0.0, 1.0, 0.0], [0.1, 0.1, 0.8])
    # one-hot pixel: zero entropy (0 log 0 = 0, no NaN)
    per = pixel_entropy(probs, bg_index=2)[0, 0]
    assert per[0].item() == 0.0
    assert per[1].item() == pytest.approx(h(0.1, 0.1), abs=1e-6)
    with pytest.raises(ValueError, match='bg_index'):
        pixel_entropy(probs, bg_index=3)


def test_invalid_pixels_are_left_out_of_the_mean():
    probs = _probs([0.5, 0.5], [1.0, 0.0], [0.9, 0.1], [0.5, 0.5])
    valid = torch.tensor([[[True, True, False, False]]])
    e = foreground_entropy(probs, valid, bg_index=None)
    assert e.item() == pytest.approx(h(0.5, 0.5) / 2, abs=1e-6)
    # a naive mean over all pixels is larger: the nodata border counts
    naive = foreground_entropy(probs, None, bg_index=None)
    assert naive.item() == pytest.approx(
        (2 * h(0.5, 0.5) + h(0.9, 0.1)) / 4, abs=1e-6)
    none = foreground_entropy(probs, torch.zeros_like(valid), None)
    assert math.isnan(none.item())


def test_pooled_feature_masked_and_normalised():
    feat = torch.zeros(1, 2, 2, 2)
    feat[0, 0] = torch.tensor([[1., 3.], [0., 0.]])
    feat[0, 1] = torch.tensor([[0., 0.], [4., 8.]])
    # only the top row valid (input 4x4 -> feature 2x2: top cells)
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    valid[0, :2] = True
    f = pooled_feature(feat, valid)
    assert torch.allclose(f, torch.tensor([[1.0, 0.0]]))
    g = pooled_feature(feat)  # plain mean (1, 3) -> normalised
    assert torch.allclose(g, torch.tensor([[1 / 10 ** .5, 3 / 10 ** .5]]))
    assert np.isclose(float(g.norm()), 1.0)
