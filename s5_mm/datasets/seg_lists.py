"""What the S5 fine-tuning datasets share: split lists, dataset names and
the label-range check.

Split list (``ann_file``), one sample per line, detected per line:
- one column: MMSeg's base name ``X`` -> ``<img_path>/X<img_suffix>`` and
  ``<seg_map_path>/X<seg_map_suffix>`` (``data_prefix`` joined with
  ``data_root``);
- two columns: S5's ``<image> <mask>``, both relative to ``data_root``
  (absolute paths are kept).
Blank lines and lines starting with ``#`` are skipped. Without ``ann_file``
every image under ``data_prefix['img_path']`` is used (MMSeg's scan).

Every sample carries ``dataset_name`` (routing key of the multi-dataset
models; list it in ``PackSegInputs(meta_keys=...)``); the metainfo carries
it too.
"""
import os.path as osp
from typing import List, Optional, Tuple

from s5_mm.datasets.transforms.label_check import insert_label_check


def read_split_list(path: str, data_root: Optional[str], img_dir: str,
                    ann_dir: Optional[str], img_suffix: str,
                    seg_map_suffix: str
                    ) -> List[Tuple[str, Optional[str]]]:
    """(image path, mask path or None) for every sample line of ``path``."""
    root = data_root or ''
    pairs = []
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith('#'):
                continue
            if len(parts) == 1:
                seg = (osp.join(ann_dir, parts[0] + seg_map_suffix)
                       if ann_dir is not None else None)
                pairs.append((osp.join(img_dir, parts[0] + img_suffix), seg))
            elif len(parts) == 2:
                pairs.append((osp.join(root, parts[0]),
                              osp.join(root, parts[1])))
            else:
                raise ValueError(
                    f'{path}:{n}: expected "<base name>" or "<image> <mask>",'
                    f' got {len(parts)} columns: {line.strip()!r}')
    return pairs


class S5SegDatasetMixin:
    """Put before the MMSeg dataset class in the bases.

    Args:
        dataset_name (str, optional): routing name carried by every sample;
            default ``DEFAULT_NAME`` of the class.
        check_labels (bool): insert ``CheckLabelRange`` after the pipeline's
            annotation loader, so masks with ids beyond the class count
            fail naming the file. Default True.
        check_files (bool): check at start-up that every listed image and
            mask exists. Default True.
    """
    DEFAULT_NAME = ''

    def __init__(self,
                 *args,
                 dataset_name: Optional[str] = None,
                 check_labels: bool = True,
                 check_files: bool = True,
                 **kwargs):
        self.dataset_name = dataset_name or self.DEFAULT_NAME
        if not isinstance(self.dataset_name, str) or not self.dataset_name:
            raise ValueError(f'{type(self).__name__}: dataset_name must be a '
                             f'non-empty string, got {dataset_name!r}')
        self.check_labels = check_labels
        self.check_files = check_files
        super().__init__(*args, **kwargs)
        self._metainfo['dataset_name'] = self.dataset_name
        if check_labels:
            insert_label_check(self.pipeline, len(self._metainfo['classes']),
                               self.ignore_index)

    def _where(self) -> str:
        return f'{type(self).__name__}({self.dataset_name!r})'

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '') or ''
        ann_dir = self.data_prefix.get('seg_map_path')
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(
                    f'{self._where()}: split list not found: {self.ann_file}')
            pairs = read_split_list(self.ann_file, self.data_root, img_dir,
                                    ann_dir, self.img_suffix,
                                    self.seg_map_suffix)
            data_list = [self._data_info(i, s) for i, s in pairs]
        else:
            if not osp.isdir(img_dir):
                raise FileNotFoundError(
                    f'{self._where()}: image folder not found: {img_dir}')
            data_list = super().load_data_list()
        data_list = self.filter_samples(data_list)
        if not data_list:
            raise ValueError(f'{self._where()}: no samples in '
                             f'{self.ann_file or img_dir}')
        if self.check_files:
            self._check_files(data_list)
        for info in data_list:
            info['dataset_name'] = self.dataset_name
        return data_list

    def filter_samples(self, data_list: List[dict]) -> List[dict]:
        """Hook for subclasses that drop samples (e.g. OEM's xBD tiles)."""
        return data_list

    def _data_info(self, img: str, seg: Optional[str]) -> dict:
        info = dict(img_path=img, label_map=self.label_map,
                    reduce_zero_label=self.reduce_zero_label, seg_fields=[])
        if seg is not None:
            info['seg_map_path'] = seg
        return info

    def _check_files(self, data_list: List[dict]) -> None:
        missing = [info[k] for info in data_list
                   for k in ('img_path', 'seg_map_path')
                   if k in info and not osp.isfile(info[k])]
        if missing:
            raise FileNotFoundError(
                f'{self._where()}: {len(missing)} listed file(s) missing '
                f'(from {self.ann_file or self.data_prefix}), e.g. '
                f'{missing[:3]}')
