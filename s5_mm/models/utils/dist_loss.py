"""Loss normalisers that do not depend on how a batch is split over ranks.

DDP averages the ranks' gradients, so a loss that is a per-rank mean
(local sum / local count) gives the gradient of the global mean only when
every rank has the same count. Pixel counts differ between ranks (ignored
or padded pixels, samples of a dataset), so a run on W processes would
differ from one process with the whole batch. The fix, as mmdet's heads do
with ``reduce_mean(num_pos)``: divide the local sum by
``global count / world size``; DDP's average of these is then exactly
``global sum / global count``.

Every helper here is the identity in one process (no process group, or a
group of one): single-process results are unchanged to the bit. Under a
group each call is a collective that every rank must make, in the same
order, whatever its batch holds.
"""
from contextlib import contextmanager
from typing import List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from mmengine import dist as mmdist
from mmseg.models.losses import CrossEntropyLoss
from torch import Tensor, nn


def world_size() -> int:
    """Processes in the default group (1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def global_mean_counts(counts: Tensor) -> Tensor:
    """``counts`` summed over ranks, divided by the world size (float64 so
    that pixel counts stay exact); ``counts`` itself in one process."""
    if world_size() == 1:
        return counts
    total = counts.detach().to(torch.float64).clone()
    mmdist.all_reduce(total, op='sum')
    return total / world_size()


def mean_ce_losses(head: Optional[nn.Module]) -> List[CrossEntropyLoss]:
    """The softmax ``CrossEntropyLoss`` modules of a decode head that reduce
    by a mean (the ones whose normaliser is a pixel count). Other losses
    (Dice, Lovasz, ...) average over per-sample terms and keep their
    per-rank normalisers."""
    if head is None:
        return []
    losses = head.loss_decode
    losses = list(losses) if isinstance(losses, nn.ModuleList) else [losses]
    return [
        m for m in losses
        if isinstance(m, CrossEntropyLoss) and not m.use_sigmoid
        and not m.use_mask and m.reduction == 'mean'
    ]


def ce_avg_factor(loss: CrossEntropyLoss, label: Tensor,
                  ignore_index: int) -> Tensor:
    """What mmseg's ``cross_entropy`` divides the summed pixel losses of
    ``label`` by: the pixel count, the non-ignored pixel count
    (``avg_non_ignore``) or, with class weights, the non-ignored pixels'
    summed class weights."""
    valid = label != ignore_index
    if loss.class_weight is not None:
        weight = label.new_tensor(loss.class_weight, dtype=torch.float64)
        return weight[label[valid]].sum()
    if loss.avg_non_ignore:
        return valid.sum().to(torch.float64)
    return label.new_tensor(label.numel(), dtype=torch.float64)


def head_ce_factors(heads: Sequence[Optional[nn.Module]],
                    label: Optional[Tensor], device=None
                    ) -> List[Tuple[CrossEntropyLoss, Tensor]]:
    """(loss module, local avg factor) of every mean CE of ``heads``, for
    the labels ``label`` ((B, H, W) or (B, 1, H, W)); factor 0 when
    ``label`` is None (no sample on this rank)."""
    out = []
    for head in heads:
        for loss in mean_ce_losses(head):
            if label is None:
                factor = torch.zeros((), dtype=torch.float64, device=device)
            else:
                factor = ce_avg_factor(loss, label, head.ignore_index)
            out.append((loss, factor))
    return out


def globalise_factors(pairs: List[Tuple[nn.Module, Tensor]]
                      ) -> List[Tuple[nn.Module, Tensor]]:
    """One all-reduce for all ``pairs``: each local factor becomes
    ``global factor / world size``. Empty list in one process (nothing to
    override)."""
    if world_size() == 1 or not pairs:
        return []
    local = torch.stack([f for _, f in pairs])
    glob = global_mean_counts(local)
    return [(m, g) for (m, _), g in zip(pairs, glob)]


@contextmanager
def ce_avg_factors(pairs: Sequence[Tuple[nn.Module, Tensor]]):
    """Within the block each loss module of ``pairs`` is called with
    ``avg_factor`` = its factor (a forward pre-hook: the decode heads call
    their losses without one). The factor is cast to float32 so that the
    loss keeps its dtype."""
    handles = []

    def hook_for(factor):
        def hook(module, args, kwargs):
            kwargs['avg_factor'] = factor
            return args, kwargs
        return hook

    try:
        for module, factor in pairs:
            handles.append(module.register_forward_pre_hook(
                hook_for(factor.to(torch.float32)), with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()


def gather_flat(*tensors: Tensor, pad_values: Sequence) -> List[Tensor]:
    """Each tensor flattened and concatenated over ranks (rank order). Ranks
    may hold different numbers of elements: each pads to the largest with
    its ``pad_values`` entry. One process: the flattened tensors."""
    flat = [t.reshape(-1) for t in tensors]
    if world_size() == 1:
        return flat
    n = torch.tensor([flat[0].numel()], device=flat[0].device)
    size = int(max(mmdist.all_gather(n)).item())
    out = []
    for t, pad in zip(flat, pad_values):
        if t.numel() < size:
            t = torch.cat([t, t.new_full((size - t.numel(), ), pad)])
        out.append(torch.cat(mmdist.all_gather(t)))
    return out
