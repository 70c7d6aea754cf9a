"""S4P semi-supervised segmentor: FixMatch with CutMix around any MMSeg model.

Implements S5_METHOD.md section 2. Training batches come from
``mmdet.MultiBranch`` pipelines with the branches ``sup`` (labelled, weak),
``unsup_teacher`` (unlabelled, weak) and ``unsup_student`` (the same crop,
strong); ``mmdet.MultiBranchDataPreprocessor`` groups them per branch.
Unlabelled samples carry a ``gt_sem_seg`` padding mask (0 = image,
``ignore_index`` = padding, see ``AddPaddingMask``).
"""
import copy
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.dist import get_rank
from mmengine.logging import MessageHub, print_log
from mmengine.registry import DefaultScope
from mmdet.models.utils import rename_loss_dict, reweight_loss_dict
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from torch import Tensor

from s5_mm.registry import MODELS
from ..utils.cutmix import boxes_to_masks, cutmix, sample_cutmix_boxes
from ..utils.dist_loss import (ce_avg_factors, gather_flat,
                               global_mean_counts, globalise_factors,
                               head_ce_factors, world_size)

SUP, WEAK, STRONG = 'sup', 'unsup_teacher', 'unsup_student'

DEFAULT_SEMI_TRAIN_CFG = dict(
    conf_thresh=0.95,
    sup_weight=0.5,
    unsup_weight=0.5,
    cutmix_prob=0.5,
    cutmix_area=(0.02, 0.4),
    cutmix_aspect=(0.3, 3.3),
    teacher='self',
    ema_momentum=0.001,
    unsup_start_iter=0,
    class_keep_ratio=None,
    joint_forward=True,
    ignore_index=255,
    seed=None,
)
DEFAULT_SEMI_TEST_CFG = dict(predict_on='student')


class PseudoLabels(NamedTuple):
    """Pseudo-labels of a batch of unlabelled crops, each (B, H, W).

    ``thresh`` is a per-pixel map (tau everywhere, or the class thresholds
    with ``class_keep_ratio``) so that CutMix moves it with the labels.
    """
    labels: Tensor  # long, the teacher's class
    conf: Tensor  # float32, its softmax probability
    pad: Tensor  # bool, True on padding
    thresh: Tensor  # float32, kept where conf >= thresh

    @property
    def keep(self) -> Tensor:
        """Confident, non-padding pixels."""
        return (self.conf >= self.thresh) & ~self.pad


def _merge_cfg(defaults: dict, cfg: Optional[dict], name: str) -> dict:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise ValueError(f'unknown {name} keys {unknown}; known keys: '
                         f'{sorted(defaults)}')
    return {**defaults, **cfg}


@MODELS.register_module()
class S4PSegmentor(BaseSegmentor):
    """FixMatch + CutMix semi-supervised wrapper of an MMSeg segmentor.

    Args:
        segmentor (dict): config of the wrapped segmentor (student).
        semi_train_cfg (dict): ``conf_thresh`` (tau), ``sup_weight`` and
            ``unsup_weight`` (total = w_s * L_sup + w_u * L_unsup, S5:
            0.5/0.5), ``cutmix_prob``, ``cutmix_area`` (fraction of the crop),
            ``cutmix_aspect``, ``teacher`` ('self': the student in eval mode
            without grad, as S5; 'ema': an EMA copy), ``ema_momentum`` (weight
            of the student per update, mmdet convention), ``unsup_start_iter``
            (supervised warm-up length), ``class_keep_ratio`` (None, S5: one
            threshold tau for all classes; r in (0, 1]: per class, the r most
            confident fraction of the pixels the teacher assigns to it in the
            batch (of every rank, under DDP) are kept even below tau, so
            that rare classes are not
            dropped from the pseudo-labels, as class-balanced self-training
            does), ``joint_forward`` (one student pass
            on labelled + strong images), ``ignore_index``, ``seed`` (CutMix
            seed; default: torch's initial seed).
        semi_test_cfg (dict): ``predict_on`` 'student' (default) or
            'teacher' (the EMA teacher; with ``teacher='self'`` that is the
            student): the network ``predict`` / ``encode_decode`` use, e.g.
            ``--cfg-options model.semi_test_cfg.predict_on=teacher`` or
            ``mmseg.apis.init_model(..., cfg_options={'model.semi_test_cfg.
            predict_on': 'teacher'})``. ``S4PTeacherStudentTestLoop`` and
            ``S4PTeacherStudentValLoop`` switch it to score both.
        data_preprocessor (dict, optional): a multi-branch preprocessor, or
            a plain one, which is wrapped in
            ``mmdet.MultiBranchDataPreprocessor`` (default: the segmentor's).
        pretrained, train_cfg: only None (what ``mmseg.apis.init_model``
            passes); the wrapped segmentor's go into ``segmentor``.
    """

    def __init__(self,
                 segmentor: dict,
                 semi_train_cfg: Optional[dict] = None,
                 semi_test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None):
        # mmseg.apis.init_model sets both to None on every model config
        for key, value in (('pretrained', pretrained),
                           ('train_cfg', train_cfg)):
            if value is not None:
                raise ValueError(
                    f'S4PSegmentor takes no {key} (got {value!r}); set '
                    f'segmentor.{key} for the wrapped segmentor'
                    + (' and semi_train_cfg for S4P'
                       if key == 'train_cfg' else ''))
        self.semi_train_cfg = _merge_cfg(DEFAULT_SEMI_TRAIN_CFG,
                                         semi_train_cfg, 'semi_train_cfg')
        self.semi_test_cfg = _merge_cfg(DEFAULT_SEMI_TEST_CFG, semi_test_cfg,
                                        'semi_test_cfg')
        teacher = self.semi_train_cfg['teacher']
        if teacher not in ('self', 'ema'):
            raise ValueError(
                f"semi_train_cfg.teacher must be 'self' or 'ema', got "
                f'{teacher!r}')
        ratio = self.semi_train_cfg['class_keep_ratio']
        if ratio is not None and not 0 < ratio <= 1:
            raise ValueError('semi_train_cfg.class_keep_ratio must be None or '
                             f'in (0, 1], got {ratio!r}')
        if self.semi_test_cfg['predict_on'] not in ('student', 'teacher'):
            raise ValueError("semi_test_cfg.predict_on must be 'student' or "
                             f"'teacher', got "
                             f"{self.semi_test_cfg['predict_on']!r}")
        # ConfigDict: MMSeg reads nested settings (test_cfg.mode) as
        # attributes.
        segmentor = ConfigDict(copy.deepcopy(dict(segmentor)))
        if data_preprocessor is None:
            data_preprocessor = segmentor.get('data_preprocessor')
            if data_preprocessor is None:
                raise ValueError('S4PSegmentor needs data_preprocessor or a '
                                 'segmentor.data_preprocessor to wrap')
        if isinstance(data_preprocessor, dict) and not str(
                data_preprocessor.get('type', '')).endswith(
                    'MultiBranchDataPreprocessor'):
            # A plain preprocessor (e.g. the runner's top-level one): run it
            # per branch.
            data_preprocessor = dict(
                type='mmdet.MultiBranchDataPreprocessor',
                data_preprocessor=copy.deepcopy(dict(data_preprocessor)))
        if isinstance(data_preprocessor, dict):
            # The inner preprocessor type is an MMSeg name even when the
            # caller has no default scope set.
            with DefaultScope.overwrite_default_scope('mmseg'):
                data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)

        self.student = MODELS.build(segmentor)
        if teacher == 'ema':
            self.teacher = MODELS.build(copy.deepcopy(segmentor))
            self.teacher.requires_grad_(False)
            self.teacher.eval()
        self._teacher_synced = False
        self._calls = 0

        head = getattr(self.student, 'decode_head', None)
        self.num_classes = int(getattr(self.student, 'num_classes', 0)
                               or getattr(head, 'num_classes', 0))
        if getattr(head, 'out_channels', self.num_classes) == 1:
            raise ValueError('S4PSegmentor needs a softmax decode head '
                             '(out_channels > 1); got a sigmoid head')
        self.align_corners = getattr(self.student, 'align_corners', False)
        self.register_buffer(
            'pl_class_counts', torch.zeros(self.num_classes),
            persistent=False)

    # ------------------------------------------------------------------
    @property
    def with_ema_teacher(self) -> bool:
        return self.semi_train_cfg['teacher'] == 'ema'

    @property
    def pseudo_labeler(self):
        """The network that makes pseudo-labels."""
        return self.teacher if self.with_ema_teacher else self.student

    @property
    def predictor(self):
        use_teacher = self.semi_test_cfg['predict_on'] == 'teacher'
        return self.pseudo_labeler if use_teacher else self.student

    @property
    def out_channels(self) -> int:
        # MMSeg's SegTTAModel reads it (softmax vs sigmoid merge)
        return self.predictor.out_channels

    def train(self, mode: bool = True):
        super().train(mode)
        if self.with_ema_teacher:
            self.teacher.eval()
        return self

    # BaseSegmentor API, delegated -------------------------------------
    def extract_feat(self, inputs: Tensor):
        return self.predictor.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]):
        return self.predictor.encode_decode(inputs, batch_img_metas)

    def predict(self, inputs: Tensor, data_samples=None):
        return self.predictor.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples=None):
        return self.predictor._forward(inputs, data_samples)

    # ------------------------------------------------------------------
    def _current_iter(self) -> int:
        it = MessageHub.get_current_instance().get_info('iter')
        return int(it) if it is not None else self._calls

    def _generator(self, it: int) -> torch.Generator:
        base = self.semi_train_cfg['seed']
        if base is None:
            base = torch.initial_seed()
        seed = ((int(base) * 1_000_003 + it) * 1009 + get_rank()) % (2**63)
        return torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def _update_teacher(self, it: int) -> None:
        """EMA step; a fresh run (iteration 0) first copies the student."""
        if not self._teacher_synced:
            self._teacher_synced = True
            if it == 0:
                self.teacher.load_state_dict(self.student.state_dict())
                return
        m = self.semi_train_cfg['ema_momentum']
        for t, s in zip(self.teacher.parameters(),
                        self.student.parameters()):
            t.lerp_(s.detach(), m)
        for t, s in zip(self.teacher.buffers(), self.student.buffers()):
            if t.dtype.is_floating_point:
                t.lerp_(s, m)
            else:
                t.copy_(s)

    # Training steps, each a method a subclass can override -------------
    def loss(self, inputs: Union[Dict[str, Tensor], Tensor],
             data_samples) -> dict:
        """Weighted supervised and FixMatch losses of a multi-branch batch.

        Steps: EMA update, pseudo-labels from the weak views
        (:meth:`get_pseudo_labels`), CutMix of the strong views and their
        pseudo-labels (:meth:`mix`), one student pass
        (:meth:`forward_student`), then :meth:`loss_by_gt_sem_seg` and
        :meth:`loss_by_pseudo_labels`.
        """
        it = self._current_iter()
        self._calls += 1
        inputs, data_samples = self._check_branches(inputs, data_samples)
        if self.with_ema_teacher:
            self._update_teacher(it)
        use_unsup = (WEAK in inputs
                     and it >= self.semi_train_cfg['unsup_start_iter'])
        strong = pseudo = None
        if use_unsup:
            strong = inputs[STRONG]
            if inputs[WEAK].shape != strong.shape:
                raise ValueError(f'weak views {tuple(inputs[WEAK].shape)} '
                                 'and strong views '
                                 f'{tuple(strong.shape)} differ')
            pseudo = self.get_pseudo_labels(inputs[WEAK], data_samples[WEAK])
            self._count_pseudo_labels(pseudo)
            strong, pseudo = self.mix(strong, pseudo, it)
        sup_losses, logits_s = self.forward_student(inputs[SUP],
                                                    data_samples[SUP], strong)
        losses = self.loss_by_gt_sem_seg(sup_losses)
        if use_unsup:
            losses.update(self.loss_by_pseudo_labels(logits_s, pseudo))
        else:
            zero = inputs[SUP].new_zeros(())
            losses.update(
                rename_loss_dict('unsup_', dict(loss_ce=zero,
                                                mask_ratio=zero)))
        return losses

    @staticmethod
    def _check_branches(inputs, data_samples):
        if isinstance(inputs, Tensor):  # a plain labelled batch
            inputs, data_samples = {SUP: inputs}, {SUP: data_samples}
        if SUP not in inputs:
            raise KeyError(f"S4PSegmentor.loss needs a '{SUP}' branch, got "
                           f'{sorted(inputs)}')
        if (WEAK in inputs) != (STRONG in inputs):
            raise KeyError(f"unlabelled batches need both '{WEAK}' and "
                           f"'{STRONG}' branches, got {sorted(inputs)}")
        return inputs, data_samples

    def get_pseudo_labels(self, weak: Tensor,
                          data_samples: List) -> PseudoLabels:
        """The pseudo-labeler's classes, confidences and thresholds."""
        pad = self._padding_mask(data_samples, weak)
        logits = self._pseudo_label_logits(weak, data_samples)
        conf, labels = logits.float().softmax(dim=1).max(dim=1)
        return PseudoLabels(labels, conf, pad,
                            self.pixel_thresholds(conf, labels, pad))

    def mix(self, strong: Tensor, pseudo: PseudoLabels,
            it: int) -> Tuple[Tensor, PseudoLabels]:
        """CutMix of the strong views; the same boxes move ``pseudo``.

        The boxes come from a generator seeded by (seed, ``it``, rank).
        """
        cfg = self.semi_train_cfg
        b, _, h, w = strong.shape
        if b < 2 or cfg['cutmix_prob'] <= 0:
            if b < 2 and cfg['cutmix_prob'] > 0 and not getattr(
                    self, '_warned_small', False):
                self._warned_small = True
                print_log('S4P: 1 unlabelled image per batch, CutMix needs a '
                          'different partner image and is skipped',
                          logger='current', level=30)
            return strong, pseudo
        boxes, apply, partner = sample_cutmix_boxes(
            b, h, w, self._generator(it), cfg['cutmix_prob'],
            cfg['cutmix_area'], cfg['cutmix_aspect'])
        masks = boxes_to_masks(boxes, apply, h, w, strong.device)
        strong, *maps = cutmix(masks, partner, strong, *pseudo)
        return strong, PseudoLabels(*maps)

    def forward_student(self, sup_inputs: Tensor, sup_samples: List,
                        strong: Optional[Tensor]):
        """Unweighted supervised losses and the strong views' logits.

        With ``joint_forward`` labelled and strong images share one pass of
        an ``EncoderDecoder`` student; the logits are None without
        ``strong``.
        """
        student = self.student
        if not isinstance(student, EncoderDecoder):
            # Any other segmentor: its own loss, then a separate pass.
            sup = student.loss(sup_inputs, sup_samples)
            if strong is None:
                return sup, None
            size = strong.shape[2:]
            metas = [dict(img_shape=size, pad_shape=size)] * strong.shape[0]
            return sup, student.encode_decode(strong, metas)
        joint = (strong is not None and self.semi_train_cfg['joint_forward']
                 and sup_inputs.shape[1:] == strong.shape[1:])
        n = sup_inputs.shape[0]
        x = torch.cat([sup_inputs, strong]) if joint else sup_inputs
        feats = student.extract_feat(x)
        logits = student.decode_head.forward(feats)
        with ce_avg_factors(self._global_ce_factors(sup_samples)):
            sup = student.decode_head.loss_by_feat(logits[:n], sup_samples)
            if student.with_auxiliary_head:
                sup.update(
                    student._auxiliary_head_forward_train(
                        [f[:n] for f in feats], sup_samples))
        if strong is None:
            return sup, None
        if joint:
            return sup, logits[n:]
        return sup, student.decode_head.forward(student.extract_feat(strong))

    def _global_ce_factors(self, sup_samples: List) -> list:
        """Under DDP, the supervised CE normalisers (pixel counts) of the
        student's heads as global count / world size (one all-reduce), so
        that the gradient does not depend on how the labelled batch is split
        (:mod:`s5_mm.models.utils.dist_loss`); nothing in one process."""
        if world_size() == 1:
            return []
        student = self.student
        heads = [student.decode_head]
        if student.with_auxiliary_head:
            aux = student.auxiliary_head
            heads += list(aux) if isinstance(aux, torch.nn.ModuleList) \
                else [aux]
        label = torch.stack([s.gt_sem_seg.data for s in sup_samples])
        return globalise_factors(head_ce_factors(heads, label.squeeze(1)))

    def loss_by_gt_sem_seg(self, losses: dict) -> dict:
        """``sup_`` losses, weighted by ``sup_weight`` (metrics unweighted)."""
        weight = self.semi_train_cfg['sup_weight']
        return rename_loss_dict('sup_',
                                reweight_loss_dict(dict(losses), weight))

    def loss_by_pseudo_labels(self, logits: Tensor,
                              pseudo: PseudoLabels) -> dict:
        """Masked CE of strong-view logits against the pseudo-labels.

        Summed over the kept pixels (``conf >= thresh``, not padding),
        divided by the number of non-padding pixels and weighted by
        ``unsup_weight``: ``unsup_loss_ce`` and the kept fraction
        ``unsup_mask_ratio``. Under DDP the divisor is the global count of
        non-padding pixels / world size, so that DDP's average is the mean
        over the global batch however padding falls on the ranks.
        """
        if logits.shape[2:] != pseudo.labels.shape[1:]:
            logits = resize(logits, size=pseudo.labels.shape[1:],
                            mode='bilinear', align_corners=self.align_corners)
        valid = ~pseudo.pad
        keep = pseudo.keep
        ce = F.cross_entropy(logits.float(), pseudo.labels, reduction='none')
        world = world_size()
        n_valid = valid.sum()
        if world > 1:
            n_valid = global_mean_counts(n_valid).to(ce.dtype)
        # one non-padding pixel anywhere gives n_valid >= 1 / world
        n_valid = n_valid.clamp(min=1 / world)
        # where, not a product: non-finite values on padding stay out.
        loss = torch.where(keep, ce, ce.new_zeros(())).sum() / n_valid
        # the logged kept fraction is this rank's (global / W would not be one)
        ratio = keep.sum() / valid.sum().clamp(min=1)
        return rename_loss_dict(
            'unsup_',
            reweight_loss_dict(dict(loss_ce=loss, mask_ratio=ratio),
                               self.semi_train_cfg['unsup_weight']))

    # Pseudo-label helpers ----------------------------------------------
    @torch.no_grad()
    def _pseudo_label_logits(self, inputs: Tensor,
                             data_samples: List) -> Tensor:
        model = self.pseudo_labeler
        was_training = model.training
        model.eval()
        # MMSeg's predict_by_feat resizes the whole batch to the first
        # sample's img_shape, its unpadded size: every pseudo-label would
        # depend on which crop comes first. Use the padded batch size.
        size = tuple(inputs.shape[2:])
        metas = [dict(ds.metainfo, img_shape=size, pad_shape=size)
                 for ds in data_samples]
        try:
            logits = model.encode_decode(inputs, metas)
        finally:
            model.train(was_training)
        if logits.shape[2:] != inputs.shape[2:]:
            logits = resize(logits, size=inputs.shape[2:], mode='bilinear',
                            align_corners=self.align_corners)
        return logits

    def _padding_mask(self, data_samples: List, inputs: Tensor) -> Tensor:
        """(B, H, W) bool, True on padding of the unlabelled crops."""
        ignore = self.semi_train_cfg['ignore_index']
        h, w = inputs.shape[2:]
        masks = []
        for ds in data_samples:
            if 'gt_sem_seg' in ds:
                m = ds.gt_sem_seg.data.to(inputs.device)[0] == ignore
            else:
                # No padding mask packed: trust the preprocessor's padding.
                m = torch.zeros(h, w, dtype=torch.bool, device=inputs.device)
                left, right, top, bottom = ds.metainfo.get(
                    'padding_size', (0, 0, 0, 0))
                m[:top] = True
                m[h - bottom:] = True
                m[:, :left] = True
                m[:, w - right:] = True
            if m.shape != (h, w):
                raise ValueError(
                    f'padding mask of {ds.metainfo.get("img_path", "?")} is '
                    f'{tuple(m.shape)}, the batch is {(h, w)}')
            masks.append(m)
        return torch.stack(masks)

    def class_thresholds(self, conf: Tensor, plabel: Tensor,
                         pad: Tensor) -> Tensor:
        """(num_classes,) confidence thresholds for ``class_keep_ratio``.

        Class c's threshold is the confidence of its ceil(r * n_c)-th most
        confident non-padding pixel (n_c: pixels predicted c), capped at tau.
        Two stable sorts instead of a loop over classes: no host sync in one
        process (the cross-rank gather reads one size on the host).

        Under DDP the pixels of every rank's batch are gathered first (5
        bytes a pixel per rank: confidence, label), so the thresholds are
        those of the global batch, the same for every split over processes.
        """
        tau = self.semi_train_cfg['conf_thresh']
        ratio = self.semi_train_cfg['class_keep_ratio']
        nc = self.num_classes
        label = torch.where(pad, nc, plabel).flatten()
        flat = conf.flatten()
        if world_size() > 1 and nc < 255:
            label = label.to(torch.uint8)  # 1 byte a pixel on the wire
        # gathered padding (class nc) is ignored, as padding pixels are
        flat, label = gather_flat(flat, label, pad_values=(0., nc))
        label = label.long()
        by_conf = torch.argsort(flat, descending=True, stable=True)
        by_class = torch.argsort(label[by_conf], stable=True)
        grouped = flat[by_conf][by_class]  # class-major, conf descending
        counts = torch.zeros(nc + 1, dtype=torch.long,
                             device=conf.device).scatter_add_(
                                 0, label, torch.ones_like(label))
        starts = counts.cumsum(0) - counts
        rank = (counts * ratio).ceil().long().clamp(min=1) - 1
        idx = (starts + rank).clamp(max=flat.numel() - 1)[:nc]
        return torch.where(counts[:nc] > 0,
                           grouped[idx].clamp(max=tau),
                           grouped.new_full((nc, ), tau))

    def pixel_thresholds(self, conf: Tensor, plabel: Tensor,
                         pad: Tensor) -> Tensor:
        """(B, H, W) float32 threshold map: tau, or the class thresholds.

        A float32 map of tau keeps exactly the pixels that ``conf >= tau``
        with the python float kept: torch compares both in float32.
        """
        if self.semi_train_cfg['class_keep_ratio'] is None:
            tau = self.semi_train_cfg['conf_thresh']
            return conf.new_full(conf.shape, tau)
        return self.class_thresholds(conf, plabel, pad)[plabel]

    def _count_pseudo_labels(self, pseudo: PseudoLabels) -> None:
        # scatter_add needs no host sync (bincount would).
        plabel = pseudo.labels
        idx = torch.where(pseudo.keep, plabel, self.num_classes).flatten()
        counts = torch.zeros(
            self.num_classes + 1, device=plabel.device).scatter_add_(
                0, idx, torch.ones_like(idx, dtype=torch.float))
        self.pl_class_counts += counts[:self.num_classes].to(
            self.pl_class_counts.device)

    def pop_pseudo_label_counts(self) -> Tensor:
        """Confident pseudo-label pixels per class since the last call."""
        counts = self.pl_class_counts.detach().clone()
        self.pl_class_counts.zero_()
        return counts

    # Checkpoints -------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        own = [k for k in state_dict if k.startswith(prefix)]
        rel = [k[len(prefix):] for k in own]
        has_student = any(r.startswith('student.') for r in rel)
        has_teacher = any(r.startswith('teacher.') for r in rel)
        if own and not has_student and not has_teacher:
            # A plain segmentor checkpoint: it initialises student (+ EMA).
            for k, r in zip(own, rel):
                v = state_dict.pop(k)
                state_dict[f'{prefix}student.{r}'] = v
                if self.with_ema_teacher:
                    state_dict[f'{prefix}teacher.{r}'] = v
        elif self.with_ema_teacher and has_student and not has_teacher:
            for k, r in zip(own, rel):
                if r.startswith('student.'):
                    state_dict[f'{prefix}teacher.{r[8:]}'] = state_dict[k]
        elif not self.with_ema_teacher and has_teacher:
            for k, r in zip(own, rel):  # EMA teacher unused in 'self' mode
                if r.startswith('teacher.'):
                    state_dict.pop(k)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
