"""Transformer FFN whose second linear is split into a shared part and
per-dataset experts (MoE-MDF, S5_METHOD.md section 4).

``fc1`` + GELU are shared. ``fc2`` is a shared ``4C -> C - p`` linear plus one
``4C -> p`` expert per dataset; the output is ``concat(shared, expert[d])``.
Routing is hard, by the dataset id of each sample. With ``num_experts=0`` the
module is a plain ViT MLP (``fc1``, ``fc2``).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s5_mm.models.utils.routing import group_by_dataset


@dataclass
class ExpertRouting:
    """Samples of a batch grouped by expert, computed once per forward.

    ``groups`` holds ``(expert_id, sample_indices)``; ``sample_indices`` is
    None when the whole batch goes to one expert (no gather, no scatter).
    ``inverse`` restores batch order after the group outputs are concatenated.
    """
    groups: List[Tuple[int, Optional[Tensor]]]
    inverse: Optional[Tensor] = None

    @classmethod
    def build(cls, dataset_ids: Union[Tensor, Sequence[int], None],
              num_experts: int,
              batch_size: Optional[int] = None) -> 'ExpertRouting':
        """Group ``dataset_ids`` (one per sample) by expert.

        ``dataset_ids=None`` is only valid with a single expert.
        """
        if dataset_ids is None:
            if num_experts == 1:
                return cls(groups=[(0, None)])
            raise ValueError(
                f'this MoE model has {num_experts} experts: pass dataset_ids '
                '(one dataset id per sample) to route each sample to its '
                'expert')
        ids = torch.as_tensor(dataset_ids)
        if ids.ndim != 1 or ids.dtype.is_floating_point:
            raise ValueError('dataset_ids must be a 1-D integer tensor, got '
                             f'shape {tuple(ids.shape)} dtype {ids.dtype}')
        if batch_size is not None and ids.numel() != batch_size:
            raise ValueError(f'dataset_ids has {ids.numel()} entries but the '
                             f'batch has {batch_size} samples')
        id_list = ids.tolist()  # one host sync per forward, not per block
        bad = sorted({i for i in id_list if not 0 <= i < num_experts})
        if bad:
            raise ValueError(f'dataset ids {bad} out of range: the model has '
                             f'{num_experts} experts')
        # Ascending expert order (the layout of the concatenated outputs).
        grouped = sorted(group_by_dataset(id_list))
        if len(grouped) == 1:
            return cls(groups=[(grouped[0][0], None)])
        device = ids.device
        groups, order = [], []
        for d, idx in grouped:
            order += idx
            groups.append((d, torch.tensor(idx, device=device)))
        perm = torch.tensor(order, device=device)
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(len(order), device=device)
        return cls(groups=groups, inverse=inverse)


class MoEFFN(nn.Module):
    """ViT MLP with dataset-routed experts in its output projection.

    Args:
        embed_dims (int): Token width C.
        feedforward_channels (int): Hidden width (4C in ViT).
        num_experts (int): Number of per-dataset experts; 0 = plain MLP.
        expert_width (int): Output channels p of each expert (p < C).
    """

    def __init__(self,
                 embed_dims: int,
                 feedforward_channels: int,
                 num_experts: int = 0,
                 expert_width: int = 256):
        super().__init__()
        if num_experts < 0:
            raise ValueError(f'num_experts must be >= 0, got {num_experts}')
        self.embed_dims = embed_dims
        self.num_experts = num_experts
        self.fc1 = nn.Linear(embed_dims, feedforward_channels)
        self.act = nn.GELU()
        if num_experts == 0:
            self.expert_width = 0
            self.fc2 = nn.Linear(feedforward_channels, embed_dims)
        else:
            if not 0 < expert_width < embed_dims:
                raise ValueError(f'expert_width must be in (0, {embed_dims}), '
                                 f'got {expert_width}')
            self.expert_width = expert_width
            self.fc2_shared = nn.Linear(feedforward_channels,
                                        embed_dims - expert_width)
            self.experts = nn.ModuleList(
                nn.Linear(feedforward_channels, expert_width)
                for _ in range(num_experts))

    def _expert_linear(self, h: Tensor, expert_id: int) -> Tensor:
        # One GEMM with the stacked [shared; expert] weight: a routed batch
        # costs the same as the plain fc2 (plus a small weight copy).
        expert = self.experts[expert_id]
        weight = torch.cat([self.fc2_shared.weight, expert.weight], 0)
        bias = torch.cat([self.fc2_shared.bias, expert.bias], 0)
        return F.linear(h, weight, bias)

    def forward(self,
                x: Tensor,
                routing: Union[ExpertRouting, Tensor, None] = None) -> Tensor:
        """x: (B, N, C). routing: an :class:`ExpertRouting`, dataset ids (B,)
        or None (plain MLP, or MoE with a single expert)."""
        h = self.act(self.fc1(x))
        if self.num_experts == 0:
            return self.fc2(h)
        if not isinstance(routing, ExpertRouting):
            routing = ExpertRouting.build(routing, self.num_experts,
                                          x.shape[0])
        if len(routing.groups) == 1 and routing.groups[0][1] is None:
            return self._expert_linear(h, routing.groups[0][0])
        outs = [self._expert_linear(h.index_select(0, idx), d)
                for d, idx in routing.groups]
        return torch.cat(outs, 0).index_select(0, routing.inverse)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        # A plain (non-MoE) checkpoint: split its fc2 into shared + experts,
        # so the MoE model starts as exactly the pre-trained function.
        if self.num_experts > 0:
            w_key = prefix + 'fc2.weight'
            has_moe = any(
                k.startswith((prefix + 'fc2_shared.', prefix + 'experts.'))
                for k in state_dict)
            if w_key in state_dict and not has_moe:
                split_plain_fc2(state_dict, prefix, self.num_experts,
                                self.expert_width)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return f'num_experts={self.num_experts}, ' \
               f'expert_width={self.expert_width}'


def split_plain_fc2(state_dict: dict, prefix: str, num_experts: int,
                    expert_width: int) -> None:
    """In place: replace ``{prefix}fc2.{weight,bias}`` of a plain MLP by
    ``fc2_shared`` (rows ``[0, C-p)``) and ``num_experts`` copies of rows
    ``[C-p, C)`` as ``experts.K``."""
    for name in ('weight', 'bias'):
        key = f'{prefix}fc2.{name}'
        if key not in state_dict:
            continue
        value = state_dict.pop(key)
        out_dims = value.shape[0]
        if not 0 < expert_width < out_dims:
            raise ValueError(f'cannot split {key} with {out_dims} output '
                             f'rows into experts of width {expert_width}')
        cut = out_dims - expert_width
        state_dict[f'{prefix}fc2_shared.{name}'] = value[:cut].clone()
        for k in range(num_experts):
            state_dict[f'{prefix}experts.{k}.{name}'] = value[cut:].clone()
