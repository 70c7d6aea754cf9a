"""Two-stage detector with a shared (MoE) backbone and one neck + RPN + RoI
head per dataset: the MoE-MDF detection model (S5_METHOD.md section 4)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import BaseDetector
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn

from s5_mm.registry import DET_MODELS


def _add_prefix(losses: dict, prefix: str) -> dict:
    return {f'{prefix}.{k}': v for k, v in losses.items()}


@DET_MODELS.register_module()
class MultiHeadTwoStageDetector(BaseDetector):
    """Shared backbone (+ optional shared neck, e.g. the simple feature
    pyramid), then per dataset its own ``neck`` (FPN), ``rpn_head`` and
    ``roi_head``.

    Samples are routed by ``metainfo['dataset_name']`` (or ``'dataset_id'``,
    an index into ``dataset_names``); the backbone gets the dataset ids (MoE
    experts). Losses are prefixed with the dataset name and summed with equal
    weight.

    Args:
        backbone (dict): Shared backbone (S5ViT, MoE or plain).
        dataset_heads (dict): ``{name: dict(neck=..., rpn_head=...,
            roi_head=...)}``.
        neck (dict, optional): Shared neck applied before the per-dataset
            ones.
        dataset_names (Sequence[str], optional): Order for ``dataset_id``;
            default the backbone's ``dataset_names`` or the key order.
        train_cfg / test_cfg (dict): With ``rpn``, ``rpn_proposal``, ``rcnn``
            as in mmdet's TwoStageDetector, shared by all datasets.
    """

    def __init__(self,
                 backbone: dict,
                 dataset_heads: Dict[str, dict],
                 neck: Optional[dict] = None,
                 dataset_names: Optional[Sequence[str]] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not isinstance(dataset_heads, dict) or not dataset_heads:
            raise TypeError('dataset_heads must be a non-empty dict '
                            '{dataset_name: dict(neck, rpn_head, roi_head)}')
        # Root registry: resolves types in the config's default scope
        # (mmrotate for oriented heads).
        self.backbone = ROOT_MODELS.build(backbone)
        if neck is not None:
            self.neck = ROOT_MODELS.build(neck)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.branches = nn.ModuleDict({
            name: self._build_branch(name, cfg)
            for name, cfg in dataset_heads.items()
        })
        names = list(dataset_names or getattr(self.backbone, 'dataset_names',
                                              None) or dataset_heads)
        if sorted(names) != sorted(dataset_heads):
            raise ValueError(f'dataset_names {names} must be the '
                             f'dataset_heads keys {list(dataset_heads)}')
        self.dataset_names = names
        self._num_experts = getattr(self.backbone, 'num_experts', 0)
        bb_names = getattr(self.backbone, 'dataset_names', None)
        if self._num_experts:
            order = bb_names if bb_names is not None else names
            unknown = [n for n in names if n not in order]
            if unknown or len(order) != self._num_experts:
                raise ValueError(f'datasets {names} do not match the '
                                 f'backbone experts {order}')
            self._expert_of = {n: order.index(n) for n in names}

    def _build_branch(self, name: str, cfg: dict) -> nn.Module:
        missing = {'neck', 'rpn_head', 'roi_head'} - set(cfg)
        if missing:
            raise KeyError(f'dataset_heads[{name!r}] lacks {sorted(missing)}')
        branch = nn.Module()
        branch.neck = ROOT_MODELS.build(cfg['neck'])
        rpn = copy.deepcopy(cfg['rpn_head'])
        rpn.update(train_cfg=self.train_cfg.rpn if self.train_cfg else None,
                   test_cfg=self.test_cfg.rpn, num_classes=1)
        branch.rpn_head = ROOT_MODELS.build(rpn)
        roi = copy.deepcopy(cfg['roi_head'])
        roi.update(train_cfg=self.train_cfg.rcnn if self.train_cfg else None,
                   test_cfg=self.test_cfg.rcnn)
        branch.roi_head = ROOT_MODELS.build(roi)
        return branch

    # ---------------------------------------------------------- routing
    def sample_dataset_names(self, samples) -> List[str]:
        names = []
        for i, s in enumerate(samples):
            meta = s.metainfo
            if 'dataset_name' in meta:
                name = meta['dataset_name']
            elif 'dataset_id' in meta:
                name = self.dataset_names[int(meta['dataset_id'])]
            elif len(self.dataset_names) == 1:
                name = self.dataset_names[0]
            else:
                raise KeyError(f"sample {i}: metainfo has neither "
                               "'dataset_name' nor 'dataset_id' (add it to "
                               'PackDetInputs(meta_keys=...))')
            if name not in self.branches:
                raise KeyError(f'sample {i}: unknown dataset {name!r}; the '
                               f'model has heads {self.dataset_names}')
            names.append(name)
        return names

    @staticmethod
    def _groups(names: Sequence[str]) -> List[Tuple[str, List[int]]]:
        groups: Dict[str, List[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n, []).append(i)
        return list(groups.items())

    @staticmethod
    def _take(feats: Sequence[Tensor], idx: List[int], batch: int):
        if len(idx) == batch:
            return tuple(feats)
        index = torch.tensor(idx, device=feats[0].device)
        return tuple(f.index_select(0, index) for f in feats)

    def extract_feat(self, batch_inputs: Tensor,
                     dataset_names: Optional[Sequence[str]] = None):
        """Shared features: backbone (routed by dataset) + shared neck."""
        if self._num_experts:
            if dataset_names is None:
                raise ValueError('the MoE backbone needs dataset_names')
            ids = torch.tensor([self._expert_of[n] for n in dataset_names],
                               dtype=torch.long, device=batch_inputs.device)
            x = self.backbone(batch_inputs, dataset_ids=ids)
        else:
            x = self.backbone(batch_inputs)
        if self.with_neck:
            x = self.neck(x)
        return x

    # -------------------------------------------------------- train/test
    def loss(self, batch_inputs: Tensor, batch_data_samples) -> dict:
        names = self.sample_dataset_names(batch_data_samples)
        x = self.extract_feat(batch_inputs, names)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        losses = dict()
        for name, idx in self._groups(names):
            branch = self.branches[name]
            feats = branch.neck(self._take(x, idx, len(names)))
            samples = [batch_data_samples[i] for i in idx]
            rpn_samples = copy.deepcopy(samples)
            for s in rpn_samples:  # the RPN is class-agnostic
                s.gt_instances.labels = torch.zeros_like(
                    s.gt_instances.labels)
            rpn_losses, proposals = branch.rpn_head.loss_and_predict(
                feats, rpn_samples, proposal_cfg=proposal_cfg)
            rpn_losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k
                           else k): v for k, v in rpn_losses.items()}
            roi_losses = branch.roi_head.loss(feats, proposals, samples)
            losses.update(_add_prefix({**rpn_losses, **roi_losses}, name))
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples,
                rescale: bool = True):
        names = self.sample_dataset_names(batch_data_samples)
        x = self.extract_feat(batch_inputs, names)
        for name, idx in self._groups(names):
            branch = self.branches[name]
            feats = branch.neck(self._take(x, idx, len(names)))
            samples = [batch_data_samples[i] for i in idx]
            proposals = branch.rpn_head.predict(feats, samples, rescale=False)
            results = branch.roi_head.predict(feats, proposals, samples,
                                              rescale=rescale)
            self.add_pred_to_datasample(samples, results)
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples=None):
        """Raw RoI head outputs per dataset: ``{name: roi_outs}``."""
        names = self.sample_dataset_names(batch_data_samples)
        x = self.extract_feat(batch_inputs, names)
        outs = {}
        for name, idx in self._groups(names):
            branch = self.branches[name]
            feats = branch.neck(self._take(x, idx, len(names)))
            samples = [batch_data_samples[i] for i in idx]
            proposals = branch.rpn_head.predict(feats, samples, rescale=False)
            outs[name] = branch.roi_head.forward(feats, proposals, samples)
        return outs
