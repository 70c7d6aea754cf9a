"""Position-embedding helpers shared by S5ViT (checkpoint loading, input
sizes other than the pre-training one) and the checkpoint converters."""
import math
from typing import Sequence

import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n)**2 == n


def _as_batched(pos_embed: Tensor, name: str) -> Tensor:
    if pos_embed.ndim == 2:
        pos_embed = pos_embed.unsqueeze(0)
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f'{name}: expected shape (1, L, C), got '
                         f'{tuple(pos_embed.shape)}')
    return pos_embed


def strip_cls_slot(pos_embed: Tensor, name: str = 'pos_embed') -> Tensor:
    """(1, [1 +] s*s, C) -> (1, s*s, C): drop a leading class-token slot."""
    pos_embed = _as_batched(pos_embed, name)
    length = pos_embed.shape[1]
    if _is_square(length):
        return pos_embed
    if _is_square(length - 1):
        return pos_embed[:, 1:]
    raise ValueError(f'{name}: {length} tokens is not a square grid (with or '
                     'without a class token)')


def resize_pos_embed(pos_embed: Tensor, src_hw: Sequence[int],
                     dst_hw: Sequence[int]) -> Tensor:
    """Bicubic resize of a (1, h*w, C) grid embedding to ``dst_hw``."""
    C = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, src_hw[0], src_hw[1], C).permute(0, 3, 1, 2)
    # Interpolate in fp32: bicubic is not implemented for every low-precision
    # dtype/device pair.
    grid = F.interpolate(grid.float(), size=tuple(dst_hw), mode='bicubic',
                         align_corners=False).to(pos_embed.dtype)
    return grid.flatten(2).transpose(1, 2)


def adapt_pos_embed(pos_embed: Tensor, grid_hw: Sequence[int],
                    name: str = 'pos_embed') -> Tensor:
    """Fit a checkpoint's position embedding to a ``grid_hw`` grid without a
    class-token slot: drop a leading class-token slot if present and resize
    a square source grid bicubically."""
    pos_embed = _as_batched(pos_embed, name)
    n_target = grid_hw[0] * grid_hw[1]
    length = pos_embed.shape[1]
    # exact fits first: the target grid need not be square
    if length == n_target:
        return pos_embed
    if length == n_target + 1:
        return pos_embed[:, 1:]
    try:
        pos_embed = strip_cls_slot(pos_embed, name)
    except ValueError as e:
        raise ValueError(f'{e}; cannot resize to {tuple(grid_hw)}') from None
    side = math.isqrt(pos_embed.shape[1])
    print_log(f'{name}: resizing position embedding {side}x{side} -> '
              f'{grid_hw[0]}x{grid_hw[1]}', logger='current')
    return resize_pos_embed(pos_embed, (side, side), grid_hw)


__all__ = ['strip_cls_slot', 'resize_pos_embed', 'adapt_pos_embed']
