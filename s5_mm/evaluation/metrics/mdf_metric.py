"""Segmentation metrics of the multi-dataset (MoE-MDF) evaluation
(S5_METHOD.md section 5).

- ``S5IoUMetric``: MMSeg's ``IoUMetric`` (mIoU / mFscore / mDice from one
  confusion) where ignored pixels never count, with one or several ignore
  labels, a label-range check (a mask label that is neither a class nor
  ignored raises, naming the file: the released S5 code counted clutter
  pixels, label 5 = the class count, as correct "car" predictions) and
  test-server PNGs with the class ids 0..C-1 (LoveDA's server format; MMSeg
  writes id + 1 for ``reduce_zero_label`` datasets); its F-score of a class
  that is present but never hit is 0, not MMSeg's NaN.
- ``MultiDatasetSegMetric``: one metric per dataset, each sample routed by
  its ``dataset_name``; results ``<name>/<key>`` plus ``mean``, the mean of
  each dataset's primary metric (mIoU, mFscore for Potsdam, ...). (Not
  ``metrics=``: MMEngine's runner takes a dict with ``metrics`` for an
  Evaluator config.)
"""
import copy
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist
from mmseg.evaluation import IoUMetric
from PIL import Image

from s5_mm.registry import METRICS


def _where(sample: dict) -> str:
    path = sample.get('seg_map_path') or sample.get('img_path') or \
        '<unknown file>'
    name = sample.get('dataset_name')
    return f'{path}' + (f' (dataset {name!r})' if name else '')


@METRICS.register_module()
class S5IoUMetric(IoUMetric):
    """``IoUMetric`` with strict ignore handling (see the module doc).

    Args:
        ignore_index (int | Sequence[int]): label(s) excluded from every
            count. Default 255.
        check_labels (bool): raise when a label is neither in
            ``[0, num_classes)`` nor ignored. Default True.
        output_label_offset (int): added to the predicted class ids in the
            PNGs written to ``output_dir``. Default 0.
        Other arguments as :class:`mmseg.evaluation.IoUMetric`.
    """

    def __init__(self,
                 ignore_index: Union[int, Sequence[int]] = 255,
                 check_labels: bool = True,
                 output_label_offset: int = 0,
                 **kwargs):
        ignores = [ignore_index] if isinstance(ignore_index, int) else \
            list(ignore_index)
        if not ignores or not all(isinstance(i, int) for i in ignores):
            raise ValueError('ignore_index must be an int or a non-empty list '
                             f'of ints, got {ignore_index!r}')
        super().__init__(ignore_index=ignores[0], **kwargs)
        self.ignore_indices = tuple(ignores)
        self.check_labels = check_labels
        self.output_label_offset = int(output_label_offset)

    def valid_mask(self, label: torch.Tensor, num_classes: int,
                   sample: dict) -> torch.Tensor:
        """Pixels that count: not ignored; raise on labels out of range."""
        ignored = torch.zeros_like(label, dtype=torch.bool)
        for i in self.ignore_indices:
            ignored |= label == i
        valid = ~ignored
        if self.check_labels:
            bad = valid & ((label < 0) | (label >= num_classes))
            if bad.any():
                values = torch.unique(label[bad]).tolist()
                raise ValueError(
                    f'{_where(sample)}: label ids {values} are neither classes '
                    f'(0..{num_classes - 1}) nor ignored '
                    f'{list(self.ignore_indices)}; map them to an ignore '
                    'label (e.g. clutter -> 255) or add them to ignore_index')
        return valid

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        if self.dataset_meta is None or 'classes' not in self.dataset_meta:
            raise RuntimeError(f'{type(self).__name__} has no dataset_meta '
                               'with classes (set by the val/test loop)')
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze()
            if not self.format_only:
                label = sample['gt_sem_seg']['data'].squeeze().to(pred)
                if label.shape != pred.shape:
                    raise ValueError(f'{_where(sample)}: prediction '
                                     f'{tuple(pred.shape)} and label '
                                     f'{tuple(label.shape)} differ in size')
                valid = self.valid_mask(label, num_classes, sample)
                self.results.append(
                    self.intersect_and_union(pred[valid], label[valid],
                                             num_classes, self.ignore_index))
            if self.output_dir is not None:
                self.write_png(pred, sample)

    @staticmethod
    def total_area_to_metrics(total_area_intersect, total_area_union,
                              total_area_pred_label, total_area_label,
                              metrics=['mIoU'], nan_to_num=None, beta=1):
        """MMSeg's per-class metrics, with the F-score computed as
        ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)``: a class that is
        present but never predicted right scores 0 (MMSeg's P/R formula
        gives 0/0 = NaN there, which ``nanmean`` drops, inflating mF1)."""
        ret = IoUMetric.total_area_to_metrics(
            total_area_intersect, total_area_union, total_area_pred_label,
            total_area_label, metrics, None, beta)
        if 'Fscore' in ret:
            tp = total_area_intersect.double()
            fp = total_area_pred_label.double() - tp
            fn = total_area_label.double() - tp
            b2 = float(beta)**2
            ret['Fscore'] = ((1 + b2) * tp /
                             ((1 + b2) * tp + b2 * fn + fp)).numpy()
        if nan_to_num is not None:
            ret = OrderedDict((k, np.nan_to_num(v, nan=nan_to_num))
                              for k, v in ret.items())
        return ret

    def write_png(self, pred: torch.Tensor, sample: dict) -> str:
        """Class ids (+ offset) as a uint8 PNG named like the image."""
        base = osp.splitext(osp.basename(sample['img_path']))[0]
        path = osp.abspath(osp.join(self.output_dir, f'{base}.png'))
        ids = pred.cpu().numpy().astype(np.int64) + self.output_label_offset
        if ids.min(initial=0) < 0 or ids.max(initial=0) > 255:
            raise ValueError(f'{_where(sample)}: class ids '
                             f'{ids.min()}..{ids.max()} do not fit a uint8 '
                             'PNG')
        Image.fromarray(ids.astype(np.uint8)).save(path)
        return path


@METRICS.register_module()
class MultiDatasetSegMetric(BaseMetric):
    """Per-dataset segmentation metrics in one val/test loop.

    Args:
        dataset_metrics (dict): ``{dataset_name: metric config or
            BaseMetric}``, e.g.
            ``vaihingen=dict(type='S5IoUMetric', iou_metrics=['mIoU'])``.
        primary (dict, optional): ``{dataset_name: result key}`` averaged
            into ``mean``; default each metric's first ``iou_metrics`` entry
            (``'mIoU'``, ``'mFscore'``, ...).
        mean_key (str): name of the mean over datasets. Default 'mean'.
        output_dir (str, optional): prediction PNGs of each dataset into
            ``<output_dir>/<dataset_name>`` (the dataset metric's own
            ``output_dir``; ``tools/test.py --out DIR``). Default None: each
            metric keeps its own setting.

    Each metric gets the metainfo of its dataset: the val/test dataset is an
    ``MDFConcatDataset`` (or MMDet's ``ConcatDataset`` of datasets whose
    metainfo carries ``dataset_name``); a plain dataset's metainfo goes to
    every metric. Samples are routed by their ``dataset_name``.
    """

    def __init__(self,
                 dataset_metrics: Dict[str, Union[dict, BaseMetric]],
                 primary: Optional[Dict[str, str]] = None,
                 mean_key: str = 'mean',
                 output_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not isinstance(dataset_metrics, dict) or not dataset_metrics:
            raise TypeError('MultiDatasetSegMetric: dataset_metrics must be '
                            'a non-empty dict {dataset_name: metric config}')
        self.dataset_metrics = OrderedDict()
        for name, cfg in dataset_metrics.items():
            metric = METRICS.build(cfg) if isinstance(cfg, dict) else cfg
            if not isinstance(metric, BaseMetric):
                raise TypeError(f'dataset_metrics[{name!r}] is not a metric: '
                                f'{cfg!r}')
            self.dataset_metrics[name] = metric
        primary = dict(primary or {})
        unknown = sorted(set(primary) - set(self.dataset_metrics))
        if unknown:
            raise KeyError(f'MultiDatasetSegMetric: primary names datasets '
                           f'{unknown} without a metric; metrics: '
                           f'{list(self.dataset_metrics)}')
        self.primary = {
            name: primary.get(name, self._default_primary(m))
            for name, m in self.dataset_metrics.items()
        }
        self.mean_key = mean_key
        self._output_dir = None
        if output_dir is not None:
            self.output_dir = output_dir

    @property
    def output_dir(self) -> Optional[str]:
        return self._output_dir

    @output_dir.setter
    def output_dir(self, path: Optional[str]) -> None:
        self._output_dir = path
        if path is None:
            return
        for name, metric in self.dataset_metrics.items():
            if not hasattr(metric, 'output_dir'):
                raise TypeError(f'MultiDatasetSegMetric output_dir: the '
                                f'metric of {name!r} ({type(metric).__name__}'
                                ') writes no prediction files')
            metric.output_dir = osp.join(path, name)
            mkdir_or_exist(metric.output_dir)

    @staticmethod
    def _default_primary(metric) -> Optional[str]:
        keys = getattr(metric, 'metrics', None)
        if isinstance(keys, str):
            return keys
        return keys[0] if keys else None

    @property
    def dataset_names(self) -> List[str]:
        return list(self.dataset_metrics)

    @property
    def dataset_meta(self):
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta) -> None:
        self._dataset_meta = copy.deepcopy(meta)
        if meta is None:
            return
        metas = list(meta) if isinstance(meta, (list, tuple)) else [meta]
        if all('dataset_name' in m for m in metas):
            by_name = {m['dataset_name']: m for m in metas}
            extra = [n for n in by_name if n not in self.dataset_metrics]
            if extra:
                raise KeyError(
                    f'MultiDatasetSegMetric: datasets {extra} have no metric; '
                    f'metrics are given for {list(self.dataset_metrics)}')
        elif len(metas) == 1:
            by_name = {n: metas[0] for n in self.dataset_metrics}
        else:
            raise ValueError(
                f'MultiDatasetSegMetric: {len(metas)} dataset metainfos '
                "without 'dataset_name'; use MDFConcatDataset (or datasets "
                'that name themselves) for the val/test set')
        for name, m in by_name.items():
            self.dataset_metrics[name].dataset_meta = m

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            name = sample.get('dataset_name')
            if name is None:
                if len(self.dataset_metrics) != 1:
                    raise KeyError(
                        f'{_where(sample)}: sample has no dataset_name; list '
                        "'dataset_name' in PackSegInputs(meta_keys=...) or "
                        'use MDFConcatDataset')
                name = next(iter(self.dataset_metrics))
            if name not in self.dataset_metrics:
                raise KeyError(f'{_where(sample)}: no metric for dataset '
                               f'{name!r}; metrics: {list(self.dataset_metrics)}')
            metric = self.dataset_metrics[name]
            start = len(metric.results)
            metric.process(data_batch, [sample])
            self.results.extend((name, r) for r in metric.results[start:])
            del metric.results[start:]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        grouped: Dict[str, list] = {n: [] for n in self.dataset_metrics}
        for name, r in results:
            grouped[name].append(r)
        out: Dict[str, float] = OrderedDict()
        scores = []
        for name, metric in self.dataset_metrics.items():
            if not grouped[name] and not getattr(metric, 'format_only', False):
                continue  # dataset not in this val/test set
            print_log(f'{name}:', logger='current')
            values = metric.compute_metrics(grouped[name])
            for key, value in values.items():
                out[f'{name}/{key}'] = value
            key = self.primary[name]
            if key in values:
                scores.append(float(values[key]))
        if scores:
            out[self.mean_key] = float(np.round(np.mean(scores), 2))
        return dict(out)
