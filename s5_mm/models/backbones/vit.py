"""S5's plain ViT backbone (ViT-B/L/H, S5_METHOD.md section 3), optionally
with MoE FFNs routed by dataset (section 4).

Written directly (not on mmpretrain's ViT) so that the FFN can take the
dataset routing and attention goes straight to
``F.scaled_dot_product_attention``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from s5_mm.models.layers.moe_ffn import ExpertRouting, MoEFFN
from s5_mm.models.utils.pos_embed import adapt_pos_embed, resize_pos_embed
from s5_mm.registry import register_seg_and_det

ARCH_SETTINGS = {
    # CPU demos / tests on small multispectral tiles.
    'tiny': dict(embed_dims=64, num_layers=4, num_heads=2,
                 out_indices=(0, 1, 2, 3)),
    'b': dict(embed_dims=768, num_layers=12, num_heads=12,
              out_indices=(3, 5, 7, 11)),
    'l': dict(embed_dims=1024, num_layers=24, num_heads=16,
              out_indices=(7, 11, 15, 23)),
    'h': dict(embed_dims=1280, num_layers=32, num_heads=16,
              out_indices=(15, 23, 27, 31)),
}
ARCH_ALIASES = {'base': 'b', 'large': 'l', 'huge': 'h'}


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``
    (flash / memory-efficient kernels on GPU)."""

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads,
                                  C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection; returns tokens (B, h*w, C), (h, w)."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel_size=patch_size,
                              stride=patch_size)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), hw


class TransformerBlock(nn.Module):
    """Pre-norm ViT block; its MLP is a :class:`MoEFFN`."""

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_path: float = 0.,
                 norm_eps: float = 1e-5,
                 num_experts: int = 0,
                 expert_width: int = 256):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = Attention(embed_dims, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = MoEFFN(embed_dims, int(embed_dims * mlp_ratio),
                          num_experts, expert_width)
        self.drop_path = DropPath(drop_path) if drop_path > 0 \
            else nn.Identity()

    def forward(self,
                x: Tensor,
                routing: Optional[ExpertRouting] = None) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x), routing))


@register_seg_and_det
class S5ViT(BaseModule):
    """Plain ViT of S5: patch embedding, learned absolute position embedding
    (bicubic-resized to the input at forward time), pre-norm blocks, no class
    token in the forward pass, no final norm.

    The class token and its slot are not used. ``cls_token`` is still kept, as
    a frozen parameter, because the released S5 checkpoints contain it and the
    paper's parameter counts include it (ViT-H MoE-MDF: 824.5 M).

    Args:
        arch (str | dict): 'tiny', 'b', 'l', 'h' or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads`` (and optionally
            ``out_indices``, ``mlp_ratio``).
        img_size (int | tuple): Pre-training size; sets the position
            embedding grid (``img_size // patch_size``).
        patch_size (int): Patch size; inputs must have H, W divisible by it.
        in_channels (int): Input bands.
        out_indices (Sequence[int], optional): Blocks whose outputs are
            returned; default per arch (B: 3, 5, 7, 11).
        drop_path_rate (float): Stochastic depth, linear from 0 to this.
        qkv_bias (bool): Bias in the qkv projection.
        with_cp (bool): Activation checkpointing per block when training.
        num_experts (int): MoE experts per FFN (one per dataset); 0 = plain.
        expert_width (int): Expert output width p.
        dataset_names (Sequence[str], optional): Dataset name of each expert,
            for routing by name (:meth:`dataset_ids_from_names`).
        norm_eps (float): LayerNorm eps; 1e-5 as in the released S5 models.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint=..., prefix='backbone.')``. A plain checkpoint loaded
            into a MoE model has its fc2 split into shared + experts.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 512,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = None,
                 drop_path_rate: float = 0.1,
                 qkv_bias: bool = True,
                 with_cp: bool = False,
                 num_experts: int = 0,
                 expert_width: int = 256,
                 dataset_names: Optional[Sequence[str]] = None,
                 norm_eps: float = 1e-5,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        settings = self._arch_settings(arch)
        self.embed_dims = settings['embed_dims']
        self.num_layers = settings['num_layers']
        self.num_heads = settings['num_heads']
        if out_indices is None:
            out_indices = settings.get('out_indices', (self.num_layers - 1, ))
        self.out_indices = tuple(int(i) % self.num_layers
                                 for i in out_indices)
        if any(not -self.num_layers <= int(i) < self.num_layers
               for i in out_indices):
            raise ValueError(f'out_indices {tuple(out_indices)} out of range '
                             f'for {self.num_layers} blocks')
        self.patch_size = int(patch_size)
        self.img_size = (img_size, img_size) if isinstance(img_size, int) \
            else tuple(img_size)
        self.grid_size = (self.img_size[0] // self.patch_size,
                          self.img_size[1] // self.patch_size)
        self.in_channels = in_channels
        self.with_cp = with_cp
        self.num_experts = int(num_experts)
        self.expert_width = expert_width if self.num_experts else 0
        if dataset_names is not None:
            dataset_names = list(dataset_names)
            if self.num_experts and len(dataset_names) != self.num_experts:
                raise ValueError(f'dataset_names has {len(dataset_names)} '
                                 f'names but num_experts={self.num_experts}')
            if len(set(dataset_names)) != len(dataset_names):
                raise ValueError(f'duplicate dataset_names {dataset_names}')
        self.dataset_names = dataset_names

        C = self.embed_dims
        self.patch_embed = PatchEmbed(in_channels, C, self.patch_size)
        # Frozen and unused: see the class docstring.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C),
                                      requires_grad=False)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.grid_size[0] * self.grid_size[1], C))
        # Python floats, not torch.linspace: builds under torch.device('meta').
        dpr = [drop_path_rate * i / max(self.num_layers - 1, 1)
               for i in range(self.num_layers)]
        self.blocks = nn.ModuleList(
            TransformerBlock(C, self.num_heads,
                             settings.get('mlp_ratio', 4.), qkv_bias, dpr[i],
                             norm_eps, self.num_experts, expert_width)
            for i in range(self.num_layers))

    @staticmethod
    def _arch_settings(arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            key = ARCH_ALIASES.get(arch.lower(), arch.lower())
            if key not in ARCH_SETTINGS:
                raise KeyError(f'unknown S5ViT arch {arch!r}; choose one of '
                               f'{sorted(ARCH_SETTINGS)} or pass a dict')
            return dict(ARCH_SETTINGS[key])
        required = {'embed_dims', 'num_layers', 'num_heads'}
        missing = required - set(arch)
        if missing:
            raise KeyError(f'arch dict lacks {sorted(missing)}')
        return dict(arch)

    # ----------------------------------------------------------- routing
    def dataset_ids_from_names(self,
                               names: Sequence[str],
                               device: Union[str, torch.device, None] = None
                               ) -> Tensor:
        """Expert ids (LongTensor) of dataset ``names`` (one per sample)."""
        if self.dataset_names is None:
            raise ValueError('this S5ViT has no dataset_names; set them in '
                             'the config to route by dataset name')
        lookup = {n: i for i, n in enumerate(self.dataset_names)}
        unknown = sorted({n for n in names if n not in lookup})
        if unknown:
            raise KeyError(f'unknown dataset name(s) {unknown}; this model '
                           f'knows {self.dataset_names}')
        return torch.tensor([lookup[n] for n in names], dtype=torch.long,
                            device=device)

    # ----------------------------------------------------- pos embedding
    def resize_pos_embed(self, hw: Tuple[int, int]) -> Tensor:
        """Position embedding for an ``hw`` token grid, shape (1, h*w, C)."""
        if tuple(hw) == self.grid_size:
            return self.pos_embed
        return resize_pos_embed(self.pos_embed, self.grid_size, hw)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Checkpoints with a class-token slot (MAE) or another grid size
        # (e.g. 224 pre-training) are adapted to this model's grid.
        key = prefix + 'pos_embed'
        if key in state_dict:
            state_dict[key] = adapt_pos_embed(state_dict[key],
                                              self.grid_size, key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    # ------------------------------------------------------------- init
    def init_weights(self):
        if self.init_cfg is not None:
            # Pretrained (or other) init through mmengine; loading goes through
            # _load_from_state_dict, so pos-embed resizing and expert
            # splitting apply.
            super().init_weights()
            return
        trunc_normal_(self.pos_embed, std=.02)
        trunc_normal_(self.cls_token, std=.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.proj.bias)

    # ---------------------------------------------------------- forward
    def forward(self,
                x: Tensor,
                dataset_ids: Union[Tensor, Sequence[int], None] = None
                ) -> Tuple[Tensor, ...]:
        """x: (B, in_channels, H, W) with H, W divisible by patch_size.
        dataset_ids: (B,) expert id per sample; required for MoE models with
        more than one expert, ignored by plain ones.
        Returns the outputs of ``out_indices`` blocks, each (B, C, H/p, W/p).
        """
        B, _, H, W = x.shape
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(f'input size {H}x{W} is not divisible by the '
                             f'patch size {self.patch_size}; pad or crop it')
        routing = None
        if self.num_experts:
            routing = ExpertRouting.build(dataset_ids, self.num_experts, B)
        x, hw = self.patch_embed(x)
        x = x + self.resize_pos_embed(hw)
        outs: Dict[int, Tensor] = {}
        for i, block in enumerate(self.blocks):
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, routing, use_reentrant=False)
            else:
                x = block(x, routing)
            if i in self.out_indices:
                outs[i] = x.transpose(1, 2).reshape(B, self.embed_dims,
                                                    *hw).contiguous()
        return tuple(outs[i] for i in self.out_indices)


__all__: List[str] = ['S5ViT', 'ARCH_SETTINGS', 'adapt_pos_embed',
                      'resize_pos_embed']
