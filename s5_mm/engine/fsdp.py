"""FSDP pieces for mmengine's FlexibleRunner (configs/s4p/*_fsdp.py): a
layer auto-wrap policy and :class:`S5FSDPStrategy`.

``FSDPStrategy(model_wrapper=dict(auto_wrap_policy=dict(type=NAME, ...)))``
looks ``NAME`` up in mmengine's ``FUNCTIONS`` and calls it with the extra
keys bound; a plain config cannot hold a class, so the layer classes are
given as import paths.
"""
import importlib
from typing import Sequence, Set, Type, Union

from mmengine._strategy import FSDPStrategy
from mmengine.registry import FUNCTIONS, STRATEGIES
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

VIT_BLOCK = 's5_mm.models.backbones.vit.TransformerBlock'


def resolve_classes(layer_cls: Union[str, type, Sequence]) -> Set[Type]:
    """Module classes from import paths ('pkg.mod.Class') or classes."""
    if isinstance(layer_cls, (str, type)):
        layer_cls = [layer_cls]
    out = set()
    for item in layer_cls:
        if isinstance(item, type):
            cls = item
        else:
            mod_name, _, name = str(item).rpartition('.')
            if not mod_name:
                raise ValueError(f'layer_cls {item!r} is not an import path '
                                 "like 'pkg.module.Class'")
            try:
                cls = getattr(importlib.import_module(mod_name), name)
            except (ImportError, AttributeError) as e:
                raise ValueError(
                    f'layer_cls {item!r} cannot be imported: {e}') from e
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f'layer_cls {item!r} is not an nn.Module class')
        out.add(cls)
    if not out:
        raise ValueError('layer_cls is empty')
    return out


# mmengine's root FUNCTIONS: found from the mmseg / mmdet scopes too.
@FUNCTIONS.register_module()
def s5_layer_wrap_policy(module: nn.Module,
                         recurse: bool,
                         nonwrapped_numel: int,
                         layer_cls: Union[str, Sequence] = (VIT_BLOCK, ),
                         ) -> bool:
    """FSDP auto-wrap policy: one FSDP unit per instance of ``layer_cls``
    (default: each S5ViT block); the rest stays in the root unit."""
    return transformer_auto_wrap_policy(
        module, recurse, nonwrapped_numel,
        transformer_layer_cls=resolve_classes(layer_cls))


# OptimWrapper.state_dict() keys beside the optimizer's own
WRAPPER_KEYS = ('loss_scaler', 'base_param_settings')


# mmengine's root STRATEGIES: found from the mmseg / mmdet scopes too.
@STRATEGIES.register_module()
class S5FSDPStrategy(FSDPStrategy):
    """mmengine's ``FSDPStrategy`` with a working resume.

    mmengine 0.10 calls ``FSDP.optim_state_dict_to_load(state, model,
    optim)``, the argument order of torch < 2.1 (torch 2.11 takes
    ``(model, optim, state)``): every resume fails. The wrapper's own state
    (the AMP loss scaler) is also dropped by ``FSDP.optim_state_dict``;
    both are saved and loaded here.

    An ``S4PSegmentor`` with the EMA teacher is refused: its EMA update
    writes, inside the forward, parameters that FSDP holds as views of
    its flat parameters (autograd raises); the S5 'self' teacher works.
    """

    def _wrap_model(self, model: nn.Module):
        if getattr(model, 'with_ema_teacher', False):
            raise ValueError(
                "S4PSegmentor semi_train_cfg.teacher='ema' is not supported "
                "under FSDP (the EMA update writes FSDP's flattened "
                "parameters in the forward): use teacher='self' (S5) or DDP")
        return super()._wrap_model(model)

    def optim_state_dict(self) -> dict:
        state = FSDP.optim_state_dict(self.model, self.optim_wrapper.optimizer)
        wrapper = self.optim_wrapper.state_dict()
        state.update({k: wrapper[k] for k in WRAPPER_KEYS if k in wrapper})
        return state

    def load_optim_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        extra = {k: state_dict.pop(k) for k in WRAPPER_KEYS
                 if k in state_dict}
        state = FSDP.optim_state_dict_to_load(
            self.model, self.optim_wrapper.optimizer, state_dict)
        self.optim_wrapper.load_state_dict({**state, **extra})
