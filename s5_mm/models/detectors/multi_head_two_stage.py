"""Two-stage detector with a shared (MoE) backbone and one neck + RPN + RoI
head per dataset: the MoE-MDF detection model (S5_METHOD.md section 4)."""
import copy
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.models.utils import reweight_loss_dict
from mmengine.registry import MODELS as ROOT_MODELS
from mmseg.utils import add_prefix
from torch import Tensor, nn

from s5_mm.models.utils.routing import (expert_index_map, group_by_dataset,
                                        routed_backbone_forward,
                                        sample_dataset_names, take_samples)
from s5_mm.registry import DET_MODELS


@DET_MODELS.register_module()
class MultiHeadTwoStageDetector(BaseDetector):
    """Shared backbone (+ optional shared neck, e.g. the simple feature
    pyramid), then per dataset its own ``neck`` (FPN), ``rpn_head`` and
    ``roi_head``.

    Samples are routed by ``metainfo['dataset_name']`` (or ``'dataset_id'``,
    an index into ``dataset_names``); the backbone gets the dataset ids (MoE
    experts). Losses are prefixed with the dataset name (``dior.loss_cls``)
    and summed, each dataset's scaled by ``loss_weights`` (default 1).

    Args:
        backbone (dict): Shared backbone (S5ViT, MoE or plain).
        dataset_heads (dict): ``{name: dict(neck=..., rpn_head=...,
            roi_head=...)}``.
        neck (dict, optional): Shared neck applied before the per-dataset
            ones.
        dataset_names (Sequence[str], optional): Order for ``dataset_id``;
            default the backbone's ``dataset_names`` or the key order.
        loss_weights (dict, optional): ``{dataset_name: weight}`` for the
            losses of a dataset; datasets not named weigh 1.
        train_cfg / test_cfg (dict): With ``rpn``, ``rpn_proposal``, ``rcnn``
            as in mmdet's TwoStageDetector, shared by all datasets.
    """

    def __init__(self,
                 backbone: dict,
                 dataset_heads: Dict[str, dict],
                 neck: Optional[dict] = None,
                 dataset_names: Optional[Sequence[str]] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
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
        loss_weights = dict(loss_weights or {})
        unknown = sorted(set(loss_weights) - set(names))
        if unknown:
            raise KeyError(f'loss_weights names datasets {unknown} the '
                           f'model does not have ({names})')
        self.loss_weights = {n: float(loss_weights.get(n, 1.)) for n in names}
        self._expert_of = expert_index_map(names, self.backbone)

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
    def sample_dataset_names(self, metas: Sequence[dict]) -> List[str]:
        """Dataset name of each sample from its metainfo."""
        return sample_dataset_names(metas, self.dataset_names)

    def extract_feat(self, batch_inputs: Tensor,
                     dataset_names: Optional[Sequence[str]] = None):
        """Shared features: backbone (routed by dataset) + shared neck."""
        x = routed_backbone_forward(self.backbone, batch_inputs, dataset_names,
                                    self._expert_of)
        return self.neck(x) if self.with_neck else x

    def _per_dataset(self, batch_inputs: Tensor, batch_data_samples):
        """Yield ``(name, branch, branch neck features, samples)`` for each
        dataset of the batch, the shared features computed once."""
        names = self.sample_dataset_names(
            [s.metainfo for s in batch_data_samples])
        x = self.extract_feat(batch_inputs, names)
        for name, idx in group_by_dataset(names):
            branch = self.branches[name]
            feats = branch.neck(take_samples(x, idx, len(names)))
            yield name, branch, feats, [batch_data_samples[i] for i in idx]

    # -------------------------------------------------------- train/test
    def loss(self, batch_inputs: Tensor, batch_data_samples) -> dict:
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        losses = dict()
        for name, branch, feats, samples in self._per_dataset(
                batch_inputs, batch_data_samples):
            rpn_samples = copy.deepcopy(samples)
            for s in rpn_samples:  # the RPN is class-agnostic
                s.gt_instances.labels = torch.zeros_like(
                    s.gt_instances.labels)
            rpn_losses, proposals = branch.rpn_head.loss_and_predict(
                feats, rpn_samples, proposal_cfg=proposal_cfg)
            rpn_losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k
                           else k): v for k, v in rpn_losses.items()}
            roi_losses = branch.roi_head.loss(feats, proposals, samples)
            branch_losses = {**rpn_losses, **roi_losses}
            if self.loss_weights[name] != 1.:
                branch_losses = reweight_loss_dict(branch_losses,
                                                   self.loss_weights[name])
            losses.update(add_prefix(branch_losses, name))
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples,
                rescale: bool = True):
        for _, branch, feats, samples in self._per_dataset(
                batch_inputs, batch_data_samples):
            proposals = branch.rpn_head.predict(feats, samples, rescale=False)
            results = branch.roi_head.predict(feats, proposals, samples,
                                              rescale=rescale)
            self.add_pred_to_datasample(samples, results)
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples=None):
        """Raw RoI head outputs per dataset: ``{name: roi_outs}``."""
        outs = {}
        for name, branch, feats, samples in self._per_dataset(
                batch_inputs, batch_data_samples):
            proposals = branch.rpn_head.predict(feats, samples, rescale=False)
            outs[name] = branch.roi_head.forward(feats, proposals, samples)
        return outs
