"""iSAID (16 classes incl. background) in S5's layout or MMSeg's.

Layouts read:
- MMSeg's converter output: ``img_dir/<split>/X.png`` with labels
  ``ann_dir/<split>/X_instance_color_RGB.png`` (class ids), all files of the
  folder or the base names of an ``ann_file``.
- Split files of two columns ``<img path> <label path>`` (relative to
  ``data_root``), as S5's own lists.
- S5 crops: with ``quadrants=True`` every listed 1024 x 1024 patch gives its
  four 512 x 512 quadrants; the pipeline must crop them with ``CropWindow``
  (``s5_mm/datasets/transforms/geometric.py``) right after loading.
"""
import os.path as osp
from typing import List

from mmseg.datasets import iSAIDDataset

from s5_mm.registry import DATASETS


@DATASETS.register_module()
class S5iSAIDDataset(iSAIDDataset):
    """iSAID for S4P training and validation.

    Args:
        quadrants (bool): split each image into ``crop_size`` windows.
        patch_size (int): side of the stored patches (S5: 1024).
        crop_size (int): side of the windows (S5: 512).
    """

    def __init__(self,
                 quadrants: bool = False,
                 patch_size: int = 1024,
                 crop_size: int = 512,
                 **kwargs):
        if quadrants and patch_size % crop_size:
            raise ValueError(f'patch_size {patch_size} is not a multiple of '
                             f'crop_size {crop_size}')
        self.quadrants = quadrants
        self.patch_size = patch_size
        self.crop_size = crop_size
        super().__init__(**kwargs)
        if quadrants and not kwargs.get('lazy_init', False):
            names = [type(t).__name__ for t in self.pipeline.transforms]
            if 'CropWindow' not in names:
                raise ValueError(
                    'S5iSAIDDataset(quadrants=True) needs CropWindow in its '
                    f'pipeline after loading; pipeline has {names}')

    def load_data_list(self) -> List[dict]:
        if self.ann_file and not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'iSAID split file not found: '
                                    f'{self.ann_file}')
        img_dir = self.data_prefix.get('img_path', '')
        if not self.ann_file and not osp.isdir(img_dir):
            raise FileNotFoundError(f'iSAID image folder not found: {img_dir}')
        if self.ann_file and self._two_column(self.ann_file):
            data_list = self._load_pairs()
        else:
            data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'no iSAID images found in '
                             f'{self.ann_file or img_dir}')
        if not self.quadrants:
            return data_list
        step, out = self.crop_size, []
        for info in data_list:
            for y in range(0, self.patch_size, step):
                for x in range(0, self.patch_size, step):
                    out.append(dict(info, crop_window=(x, y, x + step,
                                                       y + step)))
        return out

    @staticmethod
    def _two_column(path: str) -> bool:
        with open(path, encoding='utf-8') as f:
            for line in f:
                if line.strip():
                    return len(line.split()) == 2
        return False

    def _load_pairs(self) -> List[dict]:
        root = self.data_root or ''
        data_list = []
        with open(self.ann_file, encoding='utf-8') as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise ValueError(f'{self.ann_file}:{n}: expected '
                                     f'"<image> <label>", got {line!r}')
                data_list.append(
                    dict(
                        img_path=osp.join(root, parts[0]),
                        seg_map_path=osp.join(root, parts[1]),
                        label_map=self.label_map,
                        reduce_zero_label=self.reduce_zero_label,
                        seg_fields=[]))
        return data_list
