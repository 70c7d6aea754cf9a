"""Adapting a pretrained patch embedding (or first conv) to N bands.

Using a 3-band (RGB) checkpoint with N bands: set the backbone's
``in_channels=N`` and a ``MultiBandSegDataPreProcessor`` with N-entry
``mean``/``std`` (``tools/band_stats.py``) and ``bgr_to_rgb=False``; then
replace the first conv / patch-embedding kernel (``(embed_dim, 3, p, p)``;
``backbone.patch_embed.proj.weight`` in S5ViT) before loading::

    ckpt = torch.load(path, map_location='cpu')
    sd = ckpt.get('state_dict', ckpt)
    sd = adapt_state_dict_channels(sd, 'backbone.patch_embed.proj.weight', N)

By default band i reuses RGB kernel ``i % 3`` scaled by 3/N (one band: their
sum), keeping the activation scale; ``band_to_rgb=[2, 1, 0, None, ...]``
copies the kernels of the sensor's red/green/blue bands and starts the other
bands at zero.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch


def adapt_patch_embed_channels(
        weight: torch.Tensor, in_channels: int,
        band_to_rgb: Optional[Sequence[Optional[int]]] = None) -> torch.Tensor:
    """A ``(out, in_channels, kh, kw)`` copy of a ``(out, c, kh, kw)`` kernel.

    Without ``band_to_rgb``: one band gets the sum over the pretrained input
    channels; otherwise band ``i`` gets pretrained channel ``i % c``, and the
    result is scaled by ``c / in_channels`` so that bands with RGB-like
    statistics give the same activation scale as the pretrained model.
    ``band_to_rgb`` (one entry per new band) instead copies pretrained
    channel ``band_to_rgb[i]`` for bands that match one (e.g. the red, green,
    blue bands of a multispectral sensor, unscaled) and gives the other
    bands (``None``) zero weights, so the adapted model initially sees only
    the matching bands and learns the others.
    """
    if weight.dim() != 4:
        raise ValueError(f'expected a 4-d conv kernel, got shape '
                         f'{tuple(weight.shape)}')
    if in_channels < 1:
        raise ValueError(f'in_channels must be >= 1, got {in_channels}')
    c = weight.shape[1]
    if band_to_rgb is not None:
        if len(band_to_rgb) != in_channels:
            raise ValueError(f'band_to_rgb has {len(band_to_rgb)} entries '
                             f'for {in_channels} bands')
        out = weight.new_zeros(weight.shape[0], in_channels, *weight.shape[2:])
        for i, j in enumerate(band_to_rgb):
            if j is not None:
                if not 0 <= j < c:
                    raise ValueError(
                        f'band_to_rgb[{i}]={j} outside 0..{c - 1}')
                out[:, i] = weight[:, j]
        return out
    if in_channels == c:
        return weight.clone()
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    idx = torch.arange(in_channels, device=weight.device) % c
    return weight[:, idx] * (c / in_channels)


def adapt_state_dict_channels(state_dict: dict, key: str, in_channels: int,
                              **kwargs) -> dict:
    """Copy of ``state_dict`` with ``state_dict[key]`` adapted to N bands."""
    if key not in state_dict:
        near = [k for k in state_dict if k.endswith('weight')][:5]
        raise KeyError(f'{key!r} not in the state dict (weights like: {near})')
    out = dict(state_dict)
    out[key] = adapt_patch_embed_channels(state_dict[key], in_channels,
                                          **kwargs)
    return out
