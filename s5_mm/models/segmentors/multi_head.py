"""Segmentor with one decode head per dataset on a shared (MoE) backbone:
the MoE-MDF segmentation model (S5_METHOD.md section 4)."""
import inspect
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import add_prefix
from torch import Tensor, nn

from s5_mm.models.utils.classifier_init import (KEEP, MERGE,
                                                MergedClassifier,
                                                plan_classifier_init)
from s5_mm.models.utils.dist_loss import (ce_avg_factors, globalise_factors,
                                          head_ce_factors, world_size)
from s5_mm.models.utils.routing import (expert_index_map, group_by_dataset,
                                        routed_backbone_forward,
                                        sample_dataset_names, take_samples)
from s5_mm.registry import MODELS
from .mdf_utils import (add_zero_touch, dataset_test_cfgs, distributed_world,
                        drop_not_started, flip_average, flip_directions,
                        parse_mdf_train_cfg, strip_semi_prefix,
                        weight_losses)


@MODELS.register_module()
class MultiHeadEncoderDecoder(EncoderDecoder):
    """EncoderDecoder with ``decode_head`` (and optional ``auxiliary_head``)
    given as ``{dataset_name: head_cfg}``.

    Each sample is routed by ``data_samples[i].metainfo['dataset_name']``
    (or ``'dataset_id'``, an index into ``dataset_names``): the backbone gets
    the dataset ids (MoE experts), each head sees only its own samples. The
    loss holds every dataset's losses prefixed ``<name>.decode`` (and
    ``<name>.aux``), summed by the optimizer wrapper.

    Multi-dataset options (per-dataset loss weights and start iterations,
    DDP with datasets absent from a rank, per-dataset ``test_cfg`` with flip
    averaging, the head of image-only inference (``default_dataset``), the
    released code's upsampling (``align_corners``), S4P checkpoints): see
    :mod:`.mdf_utils`.

    Args:
        decode_head (dict): ``{dataset_name: decode head config}``.
        auxiliary_head (dict, optional): same keys, one auxiliary head each.
        dataset_names (Sequence[str], optional): Dataset order for
            ``dataset_id`` routing; default: the backbone's ``dataset_names``
            or else the ``decode_head`` key order. The backbone's expert of a
            dataset is looked up by name when the backbone has names.
        classifier_init (dict, optional): how each classifier starts from a
            single-head checkpoint, by class names (``checkpoint_classes``,
            ``dataset_classes``, ``class_maps``): kept, merged or new, see
            :mod:`s5_mm.models.utils.classifier_init`. Default: all new.
        Other arguments as :class:`mmseg.models.EncoderDecoder`.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: Dict[str, dict],
                 neck: Optional[dict] = None,
                 auxiliary_head: Optional[Dict[str, dict]] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 dataset_names: Optional[Sequence[str]] = None,
                 classifier_init: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        self._dataset_names_arg = dataset_names
        self._classifier_init_arg = classifier_init
        super().__init__(backbone=backbone, decode_head=decode_head,
                         neck=neck, auxiliary_head=auxiliary_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         pretrained=pretrained, init_cfg=init_cfg)
        names = self._dataset_names_arg or getattr(
            self.backbone, 'dataset_names', None) or list(self.decode_head)
        names = list(names)
        if sorted(names) != sorted(self.decode_head):
            raise ValueError(f'dataset_names {names} must be the decode_head '
                             f'keys {list(self.decode_head)}')
        self.dataset_names = names
        self._expert_of = expert_index_map(names, self.backbone)
        if 'dataset_ids' not in inspect.signature(
                self.backbone.forward).parameters:
            self._expert_of = {}  # the backbone takes no routing
        self._mdf = parse_mdf_train_cfg(self.train_cfg, names)
        dataset_test_cfgs(self.test_cfg, names)  # fail early on bad keys

    # ------------------------------------------------------------ build
    @staticmethod
    def _check_head_dict(heads, what: str) -> None:
        if not isinstance(heads, dict) or 'type' in heads or not heads:
            raise TypeError(f'MultiHeadEncoderDecoder: {what} must be a '
                            'non-empty dict {dataset_name: head config}')

    def _init_decode_head(self, decode_head: Dict[str, dict]) -> None:
        self._check_head_dict(decode_head, 'decode_head')
        self.decode_head = nn.ModuleDict(
            {name: MODELS.build(cfg) for name, cfg in decode_head.items()})
        heads = list(self.decode_head.values())
        if len({h.align_corners for h in heads}) != 1:
            raise ValueError('all decode heads must share align_corners')
        for name, head in self.decode_head.items():
            if head.out_channels < 2:
                raise ValueError(f'decode_head {name!r}: binary heads '
                                 '(out_channels=1) are not supported here')
        self.align_corners = heads[0].align_corners
        self.classifier_plan = plan_classifier_init(
            self._classifier_init_arg, list(self.decode_head))
        self.num_checkpoint_classes = n_src = len(
            (self._classifier_init_arg or {}).get('checkpoint_classes')
            or ())
        for name, plan in self.classifier_plan.items():
            head = self.decode_head[name]
            if plan['rule'] == KEEP and head.num_classes != n_src:
                raise ValueError(
                    f'classifier_init: decode_head {name!r} has '
                    f'{head.num_classes} classes, its dataset_classes '
                    f'{n_src}')
            if plan['rule'] == MERGE:
                if head.num_classes != len(plan['groups']):
                    raise ValueError(
                        f'classifier_init.class_maps.{name}: '
                        f'{len(plan["groups"])} classes, decode_head '
                        f'{name!r} has {head.num_classes}')
                head.conv_seg = MergedClassifier(head.channels,
                                                 plan['groups'], n_src)
        self.num_classes = {n: h.num_classes
                            for n, h in self.decode_head.items()}
        # the dataset's own inside a per-dataset pass (_dataset); outside,
        # any head's > 1 (softmax) is what MMSeg's SegTTAModel reads
        self.out_channels = min(h.out_channels for h in heads)

    def _init_auxiliary_head(self, auxiliary_head) -> None:
        if auxiliary_head is None:
            return
        self._check_head_dict(auxiliary_head, 'auxiliary_head')
        unknown = set(auxiliary_head) - set(self.decode_head)
        if unknown:
            raise KeyError(f'auxiliary_head datasets {sorted(unknown)} have '
                           'no decode_head')
        self.auxiliary_head = nn.ModuleDict(
            {name: MODELS.build(cfg) for name, cfg in auxiliary_head.items()})

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        # A single-head checkpoint (S4P): every dataset's decoder starts from
        # its decode head; the classifiers (conv_seg) stay freshly initialised
        # (S5_METHOD.md section 4). Plain FFNs are split into experts by the
        # backbone itself. An S4P checkpoint gives its student (or teacher).
        strip_semi_prefix(state_dict, prefix,
                          getattr(self, '_mdf', {}).get('branch', 'student'))
        head_prefix = prefix + 'decode_head.'
        keys = [k for k in state_dict if k.startswith(head_prefix)]
        is_single = keys and not any(
            k[len(head_prefix):].split('.', 1)[0] in self.decode_head
            for k in keys)
        if is_single:
            plan = self.classifier_plan
            for key in keys:
                value = state_dict.pop(key)
                rest = key[len(head_prefix):]
                is_cls = rest.startswith('conv_seg.')
                for name in self.decode_head:
                    if is_cls and plan[name]['rule'] not in (KEEP, MERGE):
                        continue
                    state_dict[f'{head_prefix}{name}.{rest}'] = value
            self._check_checkpoint_classes(state_dict, head_prefix)
            rules = ', '.join(f'{n}: {p["rule"]}' + (
                f' {p["groups"]}' if p['rule'] == MERGE else '')
                for n, p in plan.items())
            print_log(
                f'single-head checkpoint: decode_head copied to '
                f'{list(self.decode_head)}; classifiers ({rules})',
                logger='current')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _check_checkpoint_classes(self, state_dict, head_prefix) -> None:
        n_src = self.num_checkpoint_classes
        for name, plan in self.classifier_plan.items():
            key = f'{head_prefix}{name}.conv_seg.weight'
            if plan['rule'] in (KEEP, MERGE) and key in state_dict and \
                    state_dict[key].shape[0] != n_src:
                raise ValueError(
                    f'classifier_init.checkpoint_classes names {n_src} '
                    f'classes, the checkpoint\'s classifier has '
                    f'{state_dict[key].shape[0]} (decode_head.conv_seg)')

    # ---------------------------------------------------------- routing
    def sample_dataset_names(self, metas: Sequence[dict]) -> List[str]:
        """Dataset name of each sample from its metainfo."""
        return sample_dataset_names(metas, self.dataset_names)

    def extract_feat(self, inputs: Tensor,
                     dataset_names: Optional[Sequence[str]] = None
                     ) -> List[Tensor]:
        """Backbone (+ neck) features; ``dataset_names`` (one per sample)
        pick the MoE experts."""
        x = routed_backbone_forward(self.backbone, inputs, dataset_names,
                                    self._expert_of)
        return self.neck(x) if self.with_neck else x

    # ------------------------------------------------------------ train
    def loss(self, inputs: Tensor, data_samples) -> dict:
        names = self.sample_dataset_names([s.metainfo for s in data_samples])
        inputs, data_samples, names = self._active_samples(
            inputs, data_samples, names)
        # a collective: before any rank can leave early
        factors = self._global_ce_factors(data_samples, names, inputs.device)
        if not names:
            return self._finish_losses({}, names)
        x = self.extract_feat(inputs, names)
        losses = dict()
        for name, idx in group_by_dataset(names):
            feats = take_samples(x, idx, len(names))
            samples = [data_samples[i] for i in idx]
            with ce_avg_factors(factors.get(name, [])):
                loss = self.decode_head[name].loss(feats, samples,
                                                   self.train_cfg)
                losses.update(add_prefix(loss, f'{name}.decode'))
                if self.with_auxiliary_head and name in self.auxiliary_head:
                    loss = self.auxiliary_head[name].loss(feats, samples,
                                                          self.train_cfg)
                    losses.update(add_prefix(loss, f'{name}.aux'))
        return self._finish_losses(losses, names)

    def _global_ce_factors(self, data_samples, names: List[str],
                           device) -> dict:
        """Under DDP, ``{dataset: [(CE module, normaliser)]}`` with each
        dataset's CE normaliser (its pixel count) summed over ranks and
        divided by the world size, in one all-reduce: DDP's average of the
        per-dataset losses is then the per-dataset mean over the global
        batch, however its samples fall on the ranks (a rank without samples
        of a dataset adds 0 to its count). Empty in one process."""
        if world_size() == 1:
            return {}
        pairs, owner = [], []
        for name in self.dataset_names:
            idx = [i for i, n in enumerate(names) if n == name]
            label = torch.stack([data_samples[i].gt_sem_seg.data
                                 for i in idx]).squeeze(1) if idx else None
            heads = [self.decode_head[name]]
            if self.with_auxiliary_head and name in self.auxiliary_head:
                heads.append(self.auxiliary_head[name])
            found = head_ce_factors(heads, label, device)
            pairs += found
            owner += [name] * len(found)
        out = {}
        for name, pair in zip(owner, globalise_factors(pairs)):
            out.setdefault(name, []).append(pair)
        return out

    def _active_samples(self, inputs: Tensor, data_samples, names):
        """Drop the samples of datasets whose start iteration is not reached
        (``train_cfg.dataset_start_iters``)."""
        return drop_not_started(inputs, data_samples, names,
                                self._mdf['starts'])

    def dataset_parameters(self, name: str) -> List[nn.Parameter]:
        """Trainable parameters only samples of ``name`` use: its decode and
        auxiliary heads and its expert in every MoE FFN."""
        mods = [self.decode_head[name]]
        if self.with_auxiliary_head and name in self.auxiliary_head:
            mods.append(self.auxiliary_head[name])
        params = [p for m in mods for p in m.parameters()]
        if name in self._expert_of:  # MoE backbone
            k = self._expert_of[name]
            for module in self.backbone.modules():
                experts = getattr(module, 'experts', None)
                if isinstance(experts, nn.ModuleList):
                    params += list(experts[k].parameters())
        return [p for p in params if p.requires_grad]

    def _finish_losses(self, losses: dict, names: Sequence[str]) -> dict:
        """Per-dataset loss weights; under DDP, a zero term over the
        parameters of the datasets absent from this batch (module doc)."""
        losses = weight_losses(losses, self._mdf['weights'])
        touch = self._mdf['touch']
        if touch is None:
            touch = distributed_world()
        if not touch and losses:
            return losses
        present = set(names)
        if present:
            params = [p for n in self.dataset_names if n not in present
                      for p in self.dataset_parameters(n)]
        else:  # nothing to learn from on this rank: touch every parameter
            params = [p for p in self.parameters() if p.requires_grad]
        return add_zero_touch(losses, params)

    # ------------------------------------------------------------- test
    @contextmanager
    def _dataset(self, name: str):
        # slide_inference / inference read self.out_channels and
        # self.test_cfg (per dataset: test_cfg.datasets[name]);
        # postprocess_result reads self.align_corners.
        head = self.decode_head[name]
        old = self.out_channels, self.test_cfg, self.align_corners
        self.out_channels = head.out_channels
        self.test_cfg = self.dataset_test_cfg(name)
        align = (self.test_cfg or {}).get('align_corners')
        if align is not None:
            self.align_corners = align
        try:
            yield head
        finally:
            self.out_channels, self.test_cfg, self.align_corners = old

    def _test_metas(self, metas: Sequence[dict]) -> List[dict]:
        """Metainfos with ``test_cfg.default_dataset`` where a sample names
        no dataset (image-only inference, e.g. ``mmseg.apis``)."""
        default = (self.test_cfg or {}).get('default_dataset')
        unnamed = [m for m in metas
                   if 'dataset_name' not in m and 'dataset_id' not in m]
        if not unnamed:
            return list(metas)
        if default is None:
            if len(self.dataset_names) == 1:
                return list(metas)
            what = unnamed[0].get('img_path') or 'a batch without samples'
            raise KeyError(
                f'{what}: no dataset named (metainfo '
                f"'dataset_name') and the model has heads "
                f'{self.dataset_names}: set model.test_cfg.default_dataset '
                '(e.g. --cfg-options / init_model(cfg_options=...)) to '
                'pick the head and expert')
        return [m if 'dataset_name' in m or 'dataset_id' in m else
                dict(m, dataset_name=default) for m in metas]

    def _single_test_dataset(self) -> str:
        """The dataset of a batch without data samples."""
        name = self._test_metas([{}])[0].get('dataset_name')
        return name or self.dataset_names[0]

    def dataset_test_cfg(self, name: str):
        """``test_cfg`` of dataset ``name`` (``test_cfg.datasets[name]``
        over the shared keys)."""
        if 'datasets' not in (self.test_cfg or {}):
            return self.test_cfg
        return dataset_test_cfgs(self.test_cfg, self.dataset_names)[name]

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """MMSeg's whole/slide inference, with flip averaging when
        ``test_cfg.flip`` is set."""
        dirs = flip_directions(self.test_cfg.get('flip', False))
        if not dirs:
            return super().inference(inputs, batch_img_metas)
        return flip_average(super().inference, inputs, batch_img_metas, dirs)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        names = self.sample_dataset_names(self._test_metas(batch_img_metas))
        if len(set(names)) != 1:
            raise ValueError('encode_decode takes one dataset per call, got '
                             f'{sorted(set(names))}; use predict()')
        x = self.extract_feat(inputs, names)
        head = self.decode_head[names[0]]
        align = (self.dataset_test_cfg(names[0]) or {}).get('align_corners')
        if align is None or align == head.align_corners:
            return head.predict(x, batch_img_metas, self.test_cfg)
        # only the upsampling to the input (predict_by_feat), not the
        # decoder's own resizes (UPerHead's pyramid reads align_corners too)
        logits = head.forward(x)
        old, head.align_corners = head.align_corners, align
        try:
            return head.predict_by_feat(logits, batch_img_metas)
        finally:
            head.align_corners = old

    def predict(self, inputs: Tensor, data_samples=None):
        if data_samples is None:
            with self._dataset(self._single_test_dataset()):
                return super().predict(inputs, data_samples)
        metas = self._test_metas([s.metainfo for s in data_samples])
        names = self.sample_dataset_names(metas)
        for name, idx in group_by_dataset(names):
            sub_inputs = take_samples(inputs, idx, len(names))
            samples = [data_samples[i] for i in idx]
            with self._dataset(name):
                logits = self.inference(sub_inputs, [metas[i] for i in idx])
                # postprocess_result fills the samples in place.
                self.postprocess_result(logits, samples)
            for sample in samples:  # which head predicted it
                sample.set_metainfo(dict(dataset_name=name))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples=None) -> Dict[str, Tensor]:
        """Raw decode-head outputs per dataset: ``{name: logits}`` for the
        samples of each dataset (all samples of the one dataset when
        ``data_samples`` is None and there is a single head)."""
        if data_samples is None:
            names = [self._single_test_dataset()] * inputs.shape[0]
        else:
            names = self.sample_dataset_names(
                self._test_metas([s.metainfo for s in data_samples]))
        x = self.extract_feat(inputs, names)
        return {
            name: self.decode_head[name].forward(
                take_samples(x, idx, len(names)))
            for name, idx in group_by_dataset(names)
        }
