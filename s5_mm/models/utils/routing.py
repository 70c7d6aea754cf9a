"""Per-dataset routing shared by the multi-dataset models (MoE-MDF,
S5_METHOD.md section 4): which dataset each sample belongs to, the samples of
each dataset, their sub-batch, and the backbone expert of each dataset."""
import operator
from typing import (Dict, Hashable, List, Optional, Sequence, Tuple, TypeVar,
                    Union)

import torch
from torch import Tensor, nn

K = TypeVar('K', bound=Hashable)
Batch = Union[Tensor, Sequence[Tensor]]


def _where(i: int, meta: dict) -> str:
    return f"sample {i} ({meta.get('img_path', 'no img_path')})"


def sample_dataset_names(metas: Sequence[dict],
                         dataset_names: Sequence[str]) -> List[str]:
    """Dataset name of each sample from its metainfo.

    ``'dataset_name'`` wins; else ``'dataset_id'``, an index into
    ``dataset_names``; else the only dataset when there is one.

    Raises:
        KeyError: a name not in ``dataset_names``, an id out of range, or a
            sample with neither key among several datasets.
    """
    known = list(dataset_names)
    names = []
    for i, meta in enumerate(metas):
        if 'dataset_name' in meta:
            name = meta['dataset_name']
        elif 'dataset_id' in meta:
            try:
                idx = operator.index(meta['dataset_id'])
            except TypeError:
                raise TypeError(f'{_where(i, meta)}: dataset_id must be an '
                                f"integer, got {meta['dataset_id']!r}")
            # Checked explicitly: a negative id would index from the end.
            if not 0 <= idx < len(known):
                raise KeyError(f'{_where(i, meta)}: dataset_id {idx} out of '
                               f'range [0, {len(known)}) for {known}')
            name = known[idx]
        elif len(known) == 1:
            name = known[0]
        else:
            raise KeyError(f"{_where(i, meta)}: metainfo has neither "
                           "'dataset_name' nor 'dataset_id' (add the key to "
                           "the pipeline's Pack*Inputs(meta_keys=...))")
        if name not in known:
            raise KeyError(f'{_where(i, meta)}: unknown dataset {name!r}; '
                           f'the model knows {known}')
        names.append(name)
    return names


def group_by_dataset(names: Sequence[K]) -> List[Tuple[K, List[int]]]:
    """``[(name, sample indices)]`` in order of first appearance; the
    indices of each group are ascending."""
    groups: Dict[K, List[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n, []).append(i)
    return list(groups.items())


def take_samples(x: Batch, idx: List[int], batch_size: int) -> Batch:
    """Samples ``idx`` of a batch (dim 0) of a Tensor or of each Tensor of a
    tuple/list (e.g. feature levels); ``x`` itself when ``idx`` is the whole
    batch in order."""
    if len(idx) == batch_size and idx == list(range(batch_size)):
        return x
    if isinstance(x, (tuple, list)):
        index = torch.tensor(idx, device=x[0].device)
        out = [t.index_select(0, index) for t in x]
        return tuple(out) if isinstance(x, tuple) else out
    return x.index_select(0, torch.tensor(idx, device=x.device))


def expert_index_map(names: Sequence[str],
                     backbone: nn.Module) -> Dict[str, int]:
    """``{dataset name: expert index}`` of a MoE backbone (empty when the
    backbone has no experts).

    Looked up in ``backbone.dataset_names`` when the backbone has names,
    else the order of ``names`` (which must then count one per expert).
    """
    num_experts = getattr(backbone, 'num_experts', 0)
    if not num_experts:
        return {}
    bb_names = getattr(backbone, 'dataset_names', None)
    if bb_names is None:
        if num_experts != len(names):
            raise ValueError(f'backbone has {num_experts} experts but there '
                             f'are {len(names)} datasets; set '
                             'backbone.dataset_names')
        return {n: i for i, n in enumerate(names)}
    bb_names = list(bb_names)
    unknown = [n for n in names if n not in bb_names]
    if unknown:
        raise ValueError(f'datasets {unknown} have no expert in the backbone '
                         f'(dataset_names={bb_names})')
    if len(bb_names) != num_experts:
        raise ValueError(f'backbone.dataset_names {bb_names} must name its '
                         f'{num_experts} experts')
    return {n: bb_names.index(n) for n in names}


def expert_ids(names: Optional[Sequence[str]], expert_of: Dict[str, int],
               device: Union[str, torch.device, None] = None) -> Tensor:
    """(B,) long tensor of the expert of each sample's dataset."""
    if names is None:
        raise ValueError('the MoE backbone needs the dataset of each sample; '
                         'pass dataset_names')
    return torch.tensor([expert_of[n] for n in names],
                        dtype=torch.long,
                        device=device)


def routed_backbone_forward(backbone: nn.Module, inputs: Tensor,
                            dataset_names: Optional[Sequence[str]],
                            expert_of: Dict[str, int]):
    """``backbone(inputs)``, given each sample's expert as ``dataset_ids``
    when ``expert_of`` (from :func:`expert_index_map`) is not empty."""
    if not expert_of:
        return backbone(inputs)
    return backbone(inputs,
                    dataset_ids=expert_ids(dataset_names, expert_of,
                                           inputs.device))
