"""Batch CutMix helpers: derangement partners, boxes, mixing."""
import pytest
import torch

from s5_mm.models.utils.cutmix import (cutmix, random_derangement,
                                       sample_cutmix_boxes)


def test_derangement_and_boxes():
    gen = torch.Generator().manual_seed(0)
    for n in (2, 3, 5, 12):
        for _ in range(50):
            p = random_derangement(n, gen)
            assert sorted(p.tolist()) == list(range(n))
            assert (p != torch.arange(n)).all()
    with pytest.raises(ValueError, match='at least 2'):
        random_derangement(1, gen)
    h, w = 64, 48
    boxes, apply, partner = sample_cutmix_boxes(
        2000, h, w, gen, prob=0.5, area_range=(0.02, 0.4),
        aspect_range=(0.3, 3.3))
    y0, x0, y1, x1 = boxes.unbind(1)
    assert (y0 >= 0).all() and (x0 >= 0).all()
    assert (y1 <= h).all() and (x1 <= w).all()
    assert ((y1 - y0) >= 1).all() and ((x1 - x0) >= 1).all()
    area = ((y1 - y0) * (x1 - x0)).double() / (h * w)
    assert area.max() <= 0.45 and area.min() >= 0.01
    assert 0.45 < apply.double().mean() < 0.55
    assert (partner != torch.arange(2000)).all()


def test_cutmix_helper_broadcasts_channels():
    masks = torch.zeros(2, 2, 2, dtype=torch.bool)
    masks[0, 0, 0] = True
    x = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2)])
    (out, ) = cutmix(masks, torch.tensor([1, 0]), x)
    assert out[0, :, 0, 0].tolist() == [1, 1, 1]
    assert out[0].sum() == 3 and torch.equal(out[1], x[1])
