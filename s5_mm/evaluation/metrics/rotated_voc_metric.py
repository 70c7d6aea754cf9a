"""Rotated-box mAP of the VOC protocol (DIOR-R: IoU 0.5, VOC07 11-point;
DOTA: the same on patches, or ``format_only`` + ``merge_patches`` for the
server), computed in the calling process.

MMRotate's ``DOTAMetric`` computes the same numbers (the per-image TP/FP
rule is its ``tpfp_default``, the AP mmdet's ``average_precision``) but in a
pool of spawned processes and needs ``dataset_meta`` already in
``process()``; this metric reads the class names only in
``compute_metrics()``, picks its own dataset's samples and classes by
``dataset_name`` (multi-dataset evaluation with one metric per dataset), and
reports AP per class.
"""
import os.path as osp
from collections import OrderedDict
from typing import List, Optional, Sequence, Union

import numpy as np
from mmdet.evaluation.functional import average_precision
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmrotate.evaluation.functional.mean_ap import tpfp_default
from mmrotate.registry import METRICS


def as_array(x, width: int) -> np.ndarray:
    """Boxes, scores or labels (tensor, box structure, list) as a float32
    ``(n, width)`` array."""
    if hasattr(x, 'tensor'):  # mmdet / mmrotate box structures
        x = x.tensor
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32).reshape(-1, width)


def rotated_ap(dets: Sequence[np.ndarray], gts: Sequence[np.ndarray],
               gts_ignore: Sequence[np.ndarray], iou_thr: float = 0.5,
               mode: str = '11points') -> dict:
    """AP of one class over images.

    Args:
        dets: Per image (m, 6) ``x, y, w, h, t, score``.
        gts, gts_ignore: Per image (n, 5) rotated boxes; a detection
            matching an ignored (difficult) box is neither TP nor FP, and
            ignored boxes are not counted as positives.
        iou_thr: Rotated IoU for a match.
        mode: ``'11points'`` (VOC07) or ``'area'`` (area under the
            precision-recall curve, VOC2010+).

    Returns:
        dict(ap, num_gts, num_dets, recall, precision).
    """
    tp, fp = [], []
    for d, g, gi in zip(dets, gts, gts_ignore):
        t, f = tpfp_default(d, g, gi, iou_thr=iou_thr, box_type='rbox')
        tp.append(t[0])
        fp.append(f[0])
    num_gts = int(sum(len(g) for g in gts))
    all_dets = np.concatenate([d.reshape(-1, 6) for d in dets], 0) \
        if dets else np.zeros((0, 6), np.float32)
    order = np.argsort(-all_dets[:, 5], kind='stable')
    tp = np.cumsum(np.concatenate(tp)[order]) if tp else np.zeros(0)
    fp = np.cumsum(np.concatenate(fp)[order]) if fp else np.zeros(0)
    eps = np.finfo(np.float32).eps
    recall = tp / max(num_gts, eps)
    precision = tp / np.maximum(tp + fp, eps)
    ap = float(average_precision(recall, precision, mode)) if len(tp) else 0.
    return dict(ap=ap, num_gts=num_gts, num_dets=len(all_dets),
                recall=recall, precision=precision)


@METRICS.register_module()
class RotatedVOCMetric(BaseMetric):
    """mAP of rotated boxes, VOC style, with AP per class.

    Args:
        iou_thrs (float | Sequence[float]): IoU thresholds; ``mAP`` is the
            mean over them, ``AP50`` etc. each one.
        eval_mode (str): ``'11points'`` (VOC07, the DIOR-R protocol) or
            ``'area'``.
        classwise (bool): Also report ``AP50_{class}`` per class.
        dataset_name (str, optional): Only samples whose metainfo
            ``dataset_name`` is this are scored, with the classes of the
            dataset of that name (a list of such metrics, one per dataset,
            evaluates a ``ConcatDataset`` of several); ``None``: all.
        format_only (bool): Write the DOTA server files instead of scoring.
        merge_patches (bool): With ``format_only``: merge patch predictions
            (names ``{image}__{window}__{x}___{y}``) back to full images with
            rotated NMS (``merge_iou_thr``) first.
        outfile_prefix (str, optional): Folder of the ``Task1_{class}.txt``
            files (and ``Task1.zip``).
    """

    default_prefix: Optional[str] = 'rotated_voc'

    def __init__(self,
                 iou_thrs: Union[float, Sequence[float]] = 0.5,
                 eval_mode: str = '11points',
                 classwise: bool = True,
                 dataset_name: Optional[str] = None,
                 format_only: bool = False,
                 merge_patches: bool = False,
                 merge_iou_thr: float = 0.1,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.iou_thrs = [float(iou_thrs)] if isinstance(
            iou_thrs, (int, float)) else [float(t) for t in iou_thrs]
        if not self.iou_thrs or not all(0 < t <= 1 for t in self.iou_thrs):
            raise ValueError(f'iou_thrs must be in (0, 1], got {iou_thrs}')
        if eval_mode not in ('11points', 'area'):
            raise ValueError("eval_mode must be '11points' or 'area', got "
                             f'{eval_mode!r}')
        if format_only and not outfile_prefix:
            raise ValueError('format_only needs outfile_prefix (the folder '
                             'of the Task1_<class>.txt files)')
        self.eval_mode = eval_mode
        self.classwise = classwise
        self.dataset_name = dataset_name
        self.format_only = format_only
        self.merge_patches = merge_patches
        self.merge_iou_thr = merge_iou_thr
        self.outfile_prefix = outfile_prefix

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            if self.dataset_name is not None and s.get(
                    'dataset_name', self.dataset_name) != self.dataset_name:
                continue
            pred = s['pred_instances']
            gt = s.get('gt_instances', {})
            ign = s.get('ignored_instances', {})
            self.results.append(
                dict(img_id=s.get('img_id'),
                     bboxes=as_array(pred['bboxes'], 5),
                     scores=as_array(pred['scores'], 1)[:, 0],
                     labels=as_array(pred['labels'], 1)[:, 0].astype(np.int64),
                     gt_bboxes=as_array(gt.get('bboxes', np.zeros((0, 5))), 5),
                     gt_labels=as_array(gt.get('labels', np.zeros(0)),
                                      1)[:, 0].astype(np.int64),
                     ignore_bboxes=as_array(ign.get('bboxes', np.zeros(
                         (0, 5))), 5),
                     ignore_labels=as_array(ign.get('labels', np.zeros(0)),
                                          1)[:, 0].astype(np.int64)))

    def _classes(self) -> List[str]:
        meta = self.dataset_meta
        if isinstance(meta, (list, tuple)):  # mmdet ConcatDataset
            mine = [m for m in meta if self.dataset_name is not None
                    and m.get('dataset_name') == self.dataset_name]
            if len(mine) != 1:
                raise ValueError(
                    f'{type(self).__name__}(dataset_name='
                    f'{self.dataset_name!r}): the evaluated ConcatDataset '
                    'has datasets '
                    f"{[m.get('dataset_name') for m in meta]}; set "
                    'dataset_name to one of them')
            meta = mine[0]
        if not isinstance(meta, dict) or 'classes' not in meta:
            raise ValueError(f'{type(self).__name__} needs dataset_meta with '
                             f'the classes, got {meta!r}')
        return list(meta['classes'])

    def compute_metrics(self, results: list) -> dict:
        logger = MMLogger.get_current_instance()
        classes = self._classes()
        if self.format_only:
            return self._format(results, classes, logger)
        out = OrderedDict()
        table = []
        for thr in self.iou_thrs:
            aps = []
            for c, name in enumerate(classes):
                r = rotated_ap(
                    [self._dets(x, c) for x in results],
                    [x['gt_bboxes'][x['gt_labels'] == c] for x in results],
                    [x['ignore_bboxes'][x['ignore_labels'] == c]
                     for x in results], thr, self.eval_mode)
                key = f'AP{round(thr * 100):02d}'
                if r['num_gts'] > 0:  # as VOC/MMRotate: classes with GT
                    aps.append(r['ap'])
                    if self.classwise:
                        out[f'{key}_{name}'] = round(r['ap'], 4)
                rec = float(r['recall'][-1]) if len(r['recall']) else 0.
                table.append((key, name, r['num_gts'], r['num_dets'], rec,
                              r['ap']))
            out[key] = round(float(np.mean(aps)) if aps else 0., 4)
        out['mAP'] = round(float(np.mean(
            [out[f'AP{round(t * 100):02d}'] for t in self.iou_thrs])), 4)
        out.move_to_end('mAP', last=False)
        lines = [f'{"iou":>5} {"class":<28} {"gts":>6} {"dets":>6} '
                 f'{"recall":>7} {"ap":>6}']
        lines += [f'{k:>5} {n:<28} {g:>6} {d:>6} {r:7.3f} {a:6.3f}'
                  for k, n, g, d, r, a in table]
        print_log('\n' + '\n'.join(lines), logger=logger)
        return out

    @staticmethod
    def _dets(x: dict, c: int) -> np.ndarray:
        keep = x['labels'] == c
        return np.hstack([x['bboxes'][keep], x['scores'][keep, None]])

    def _format(self, results: list, classes: List[str], logger) -> dict:
        from s5_mm.datasets.dota import merge_patch_dets, write_task1_files
        if self.merge_patches:
            merged = merge_patch_dets(results, len(classes),
                                      self.merge_iou_thr)
        else:
            merged = {
                str(x['img_id']): [self._dets(x, c) for c in
                                   range(len(classes))]
                for x in results
            }
        files = write_task1_files(merged, classes, self.outfile_prefix,
                                  zip_name='Task1.zip')
        print_log(f'DOTA Task1 files of {len(merged)} images written to '
                  f'{osp.abspath(self.outfile_prefix)} ({files[-1]})',
                  logger=logger)
        return {}
