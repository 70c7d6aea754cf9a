"""Batch CutMix between different samples of a batch, run on the device.

Boxes are drawn on the host from an explicit generator (a few numbers per
sample) so that a run is reproducible from (seed, iteration, rank) and resumes
bit-exactly; the masks and the mixing are computed on the tensors' device.
"""
import math
from typing import Sequence, Tuple

import torch
from torch import Tensor


def random_derangement(n: int, generator: torch.Generator) -> Tensor:
    """A random permutation without fixed points: ``p[i] != i`` for all i.

    A random single cycle through the batch: every sample gets a partner that
    is another sample, each other sample being equally likely.
    """
    if n < 2:
        raise ValueError(f'a derangement needs at least 2 items, got {n}')
    order = torch.randperm(n, generator=generator)
    partner = torch.empty(n, dtype=torch.long)
    partner[order] = order.roll(-1)
    return partner


def sample_cutmix_boxes(
        batch_size: int,
        height: int,
        width: int,
        generator: torch.Generator,
        prob: float = 0.5,
        area_range: Sequence[float] = (0.02, 0.4),
        aspect_range: Sequence[float] = (0.3, 3.3)
) -> Tuple[Tensor, Tensor, Tensor]:
    """Draw one CutMix box, a Bernoulli(prob) switch and a partner per sample.

    The box area is ``U(area_range) * H * W``; its aspect (height / width) is
    log-uniform in ``aspect_range`` so tall and wide boxes are equally likely.

    Returns:
        boxes (B, 4) long ``[y0, x0, y1, x1]`` (end exclusive), apply (B,)
        bool, partner (B,) long with ``partner[i] != i``.
    """
    a0, a1 = area_range
    r0, r1 = aspect_range
    if not (0 < a0 <= a1 <= 1):
        raise ValueError(f'cutmix area_range must lie in (0, 1], got '
                         f'{area_range}')
    if not (0 < r0 <= r1):
        raise ValueError(f'cutmix aspect_range must be positive, got '
                         f'{aspect_range}')
    u = torch.rand(batch_size, 5, generator=generator, dtype=torch.float64)
    area = (a0 + (a1 - a0) * u[:, 0]) * height * width
    log_r = math.log(r0) + (math.log(r1) - math.log(r0)) * u[:, 1]
    aspect = log_r.exp()
    h = (area * aspect).sqrt().round().clamp(1, height).long()
    w = (area / aspect).sqrt().round().clamp(1, width).long()
    y0 = (u[:, 2] * (height - h + 1).double()).floor().long()
    x0 = (u[:, 3] * (width - w + 1).double()).floor().long()
    apply = u[:, 4] < prob
    boxes = torch.stack([y0, x0, y0 + h, x0 + w], dim=1)
    partner = random_derangement(batch_size, generator)
    return boxes, apply, partner


def boxes_to_masks(boxes: Tensor, apply: Tensor, height: int, width: int,
                   device: torch.device) -> Tensor:
    """(B, H, W) bool masks, True inside the box of samples that mix."""
    boxes = boxes.to(device, non_blocking=True)
    apply = apply.to(device, non_blocking=True)
    ys = torch.arange(height, device=device).view(1, -1, 1)
    xs = torch.arange(width, device=device).view(1, 1, -1)
    b = boxes.view(-1, 4, 1, 1)
    inside = ((ys >= b[:, 0]) & (ys < b[:, 2]) & (xs >= b[:, 1]) &
              (xs < b[:, 3]))
    return inside & apply.view(-1, 1, 1)


def cutmix(masks: Tensor, partner: Tensor, *tensors: Tensor) -> Tuple:
    """Paste ``t[partner[i]]`` into ``t[i]`` where ``masks[i]`` is True.

    Every tensor is (B, ...) with spatial dims last, (B, H, W) or
    (B, C, H, W); the same boxes apply to all of them.
    """
    partner = partner.to(masks.device, non_blocking=True)
    out = []
    for t in tensors:
        m = masks if t.dim() == 3 else masks.unsqueeze(1)
        out.append(torch.where(m, t[partner], t))
    return tuple(out)
