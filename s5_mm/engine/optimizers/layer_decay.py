"""Layer-wise learning-rate decay for S5ViT models.

Parameter "layers": patch embedding, position embedding and class token are
layer 0; backbone block i is layer i + 1; everything else (neck, heads) is
layer ``num_layers + 1``. The lr of layer l is
``base_lr * layer_decay_rate ** (num_layers + 1 - l)``, so the heads keep
``base_lr`` and block 0 gets ``base_lr * rate ** num_layers``. Biases, norm
weights (all 1-D parameters), ``pos_embed`` and ``cls_token`` get no weight
decay.

Config::

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.05),
        constructor='S5LayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.9))

Under a detection scope (mmdet / mmrotate) refer to it as
``'mmseg.S5LayerDecayOptimizerConstructor'``.
"""
import re
from typing import Dict, List, Optional, Tuple

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from s5_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS

_BLOCK = re.compile(r'(?:^|\.)backbone\.blocks\.(\d+)\.')
_EMBED = re.compile(r'(?:^|\.)backbone\.(patch_embed\.|pos_embed$|cls_token$)')
NO_DECAY_NAMES = ('pos_embed', 'cls_token')


def get_layer_id(name: str, num_layers: int) -> int:
    """Decay layer of parameter ``name`` (see the module docstring)."""
    m = _BLOCK.search(name)
    if m:
        return int(m.group(1)) + 1
    if _EMBED.search(name):
        return 0
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class S5LayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay + no weight decay on biases, norms and embeddings.

    paramwise_cfg:
        num_layers (int, optional): ViT depth; inferred from the model's
            ``backbone.blocks`` when omitted, checked against it otherwise.
        layer_decay_rate (float): Decay per block, default 0.9.
        no_decay_names (Sequence[str]): Name suffixes without weight decay
            besides 1-D parameters; default ``('pos_embed', 'cls_token')``.
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None):
        # An empty paramwise_cfg would make the base class skip add_params,
        # i.e. silently train without layer decay.
        paramwise_cfg = dict(paramwise_cfg or {})
        paramwise_cfg.setdefault('layer_decay_rate', 0.9)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        cfg = self.paramwise_cfg
        unknown = set(cfg) - {
            'num_layers', 'layer_decay_rate', 'no_decay_names'
        }
        if unknown:
            raise KeyError(f'S5LayerDecayOptimizerConstructor: unknown '
                           f'paramwise_cfg keys {sorted(unknown)}')
        rate = float(cfg.get('layer_decay_rate', 0.9))
        no_decay_names = tuple(cfg.get('no_decay_names', NO_DECAY_NAMES))
        named = [(n, p) for n, p in module.named_parameters()
                 if p.requires_grad]
        num_layers = self._num_layers(named, cfg.get('num_layers'))
        base_lr = self.base_lr
        base_wd = self.base_wd or 0.

        groups: Dict[Tuple[int, bool], dict] = {}
        for name, param in named:
            no_decay = param.ndim == 1 or name.endswith(no_decay_names)
            layer_id = get_layer_id(name, num_layers)
            key = (layer_id, no_decay)
            if key not in groups:
                scale = rate**(num_layers + 1 - layer_id)
                groups[key] = dict(params=[],
                                   lr=base_lr * scale,
                                   weight_decay=0. if no_decay else base_wd,
                                   lr_scale=scale,
                                   layer_id=layer_id)
            groups[key]['params'].append(param)
        for key in sorted(groups):
            params.append(groups[key])
        low = base_lr * rate**(num_layers + 1)
        print_log(
            f'layer decay: {num_layers} layers, rate {rate}, {len(groups)} '
            f'param groups, lr {low:.3g} (embeddings) .. {base_lr:.3g} '
            '(heads)',
            logger='current')

    @staticmethod
    def _num_layers(named: List[Tuple[str, nn.Parameter]],
                    configured: Optional[int]) -> int:
        ids = {
            int(m.group(1))
            for n, _ in named
            for m in [_BLOCK.search(n)] if m
        }
        found = max(ids) + 1 if ids else 0
        if configured is None:
            if not found:
                raise ValueError('layer decay: the model has no '
                                 'backbone.blocks.N parameters; set '
                                 'paramwise_cfg.num_layers')
            return found
        if found > configured:
            raise ValueError(f'layer decay: paramwise_cfg.num_layers='
                             f'{configured} but the backbone has {found} '
                             'blocks')
        return int(configured)
