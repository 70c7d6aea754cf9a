"""How each dataset's classifier starts from a single-head checkpoint.

S5 fine-tunes every dataset with a new classifier (S5_METHOD.md section 4).
That throws away what the checkpoint knows when a dataset shares its label
space, so a multi-head model may declare, with class names:

- ``checkpoint_classes``: the checkpoint head's classes;
- ``dataset_classes``: each dataset's classes;
- ``class_maps``: ``{dataset: {class: [checkpoint classes]}}`` for datasets
  whose classes are unions of the checkpoint's.

Rules, per dataset: the same class list -> ``keep`` (the checkpoint's
classifier is loaded); a class map -> ``merge`` (a :class:`MergedClassifier`
over the checkpoint's classes, which predicts exactly the merged
probabilities at step 0); otherwise -> ``new`` (freshly initialised, as in
the paper).
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

KEEP, MERGE, NEW = 'keep', 'merge', 'new'


class MergedClassifier(nn.Conv2d):
    """1x1 classifier over ``len(groups)`` classes, each the union of some
    source classes: ``logit_j = logsumexp_{k in groups[j]} (W x + b)_k``.

    Its softmax is the source softmax summed over each group, so with the
    source classifier's weights it predicts the merged classes exactly; the
    parameters keep the source classifier's shape and names (``weight``,
    ``bias``), so it loads that classifier as it is.
    """

    def __init__(self, in_channels: int, groups: Sequence[Sequence[int]],
                 num_source_classes: int):
        super().__init__(in_channels, num_source_classes, kernel_size=1)
        if not groups or any(not g for g in groups):
            raise ValueError(f'MergedClassifier: every merged class needs '
                             f'at least one source class, got {groups}')
        index = torch.full((len(groups), num_source_classes), False)
        for j, group in enumerate(groups):
            for k in group:
                if not 0 <= k < num_source_classes:
                    raise ValueError(f'MergedClassifier: source class {k} '
                                     f'outside 0..{num_source_classes - 1}')
                index[j, k] = True
        self.merged_groups = [list(g) for g in groups]
        self.register_buffer('member', index, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        src = super().forward(x)  # (B, K_src, H, W)
        masked = src.unsqueeze(1).masked_fill(
            ~self.member[None, :, :, None, None], float('-inf'))
        return masked.logsumexp(dim=2)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, merged_groups={self.merged_groups}'


def plan_classifier_init(classifier_init: Optional[dict],
                         heads: Sequence[str]) -> Dict[str, dict]:
    """``{dataset: dict(rule=..., groups=...)}`` for every head.

    Without ``classifier_init`` every head is ``new``. Bad names raise
    naming the key.
    """
    if not classifier_init:
        return {h: dict(rule=NEW) for h in heads}
    cfg = dict(classifier_init)
    known = {'checkpoint_classes', 'dataset_classes', 'class_maps'}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise KeyError(f'classifier_init: unknown keys {unknown}; known: '
                       f'{sorted(known)}')
    src = list(cfg.get('checkpoint_classes') or [])
    ds_classes = dict(cfg.get('dataset_classes') or {})
    maps = dict(cfg.get('class_maps') or {})
    for what, names in (('dataset_classes', ds_classes), ('class_maps',
                                                          maps)):
        extra = sorted(set(names) - set(heads))
        if extra:
            raise KeyError(f'classifier_init.{what}: {extra} are not '
                           f'datasets of this model {list(heads)}')
    if not src and (ds_classes or maps):
        raise KeyError('classifier_init.checkpoint_classes is needed with '
                       'dataset_classes / class_maps')
    if len(set(src)) != len(src):
        raise ValueError(f'classifier_init.checkpoint_classes has repeated '
                         f'names: {src}')
    plan = {}
    for head in heads:
        classes = ds_classes.get(head)
        if head in maps:
            plan[head] = dict(rule=MERGE, groups=_groups(
                head, maps[head], classes, src))
        elif classes is not None and list(classes) == src:
            plan[head] = dict(rule=KEEP)
        else:
            plan[head] = dict(rule=NEW)
    return plan


def _groups(head: str, class_map: dict, classes: Optional[Sequence[str]],
            src: List[str]) -> List[List[int]]:
    where = f'classifier_init.class_maps.{head}'
    if classes is None:
        classes = list(class_map)
    missing = [c for c in classes if c not in class_map]
    extra = [c for c in class_map if c not in classes]
    if missing or extra:
        raise KeyError(f'{where}: must map each class of dataset {head} '
                       f'{list(classes)}; missing {missing}, unknown {extra}')
    groups = []
    for c in classes:
        members = class_map[c]
        if isinstance(members, str):
            members = [members]
        bad = [m for m in members if m not in src]
        if bad or not members:
            raise KeyError(f'{where}.{c}: {bad or members} are not classes '
                           f'of the checkpoint {src}')
        groups.append([src.index(m) for m in members])
    return groups


def merge_lut(classifier_init: dict, dataset: str):
    """Source class id -> merged class id of ``dataset``'s class map (as a
    numpy array), to score a checkpoint's predictions in the merged label
    space. Every source class must belong to exactly one merged class."""
    import numpy as np
    heads = set(classifier_init.get('dataset_classes') or {}) | set(
        classifier_init.get('class_maps') or {}) | {dataset}
    plan = plan_classifier_init(classifier_init, sorted(heads))[dataset]
    if plan['rule'] != MERGE:
        raise KeyError(f'classifier_init.class_maps has no map for '
                       f'{dataset!r}')
    n_src = len(classifier_init['checkpoint_classes'])
    lut = np.full(n_src, -1, np.int64)
    for j, group in enumerate(plan['groups']):
        for k in group:
            if lut[k] >= 0:
                raise ValueError(f'classifier_init.class_maps.{dataset}: '
                                 f'source class {k} is in two classes')
            lut[k] = j
    if (lut < 0).any():
        src = classifier_init['checkpoint_classes']
        raise ValueError(f'classifier_init.class_maps.{dataset}: '
                         f'{[src[k] for k in np.flatnonzero(lut < 0)]} '
                         'belong to no merged class')
    return lut
