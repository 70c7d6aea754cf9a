"""Unlabelled image dataset: an image folder or a selection list file.

List files are what the data-selection tool writes: one image path per line,
optionally followed by score columns (whitespace, tab or comma separated);
blank lines and lines starting with '#' are skipped. Relative paths resolve
against ``data_prefix['img_path']`` (joined with ``data_root``), or the list
file's folder when neither is set. Samples carry no labels; use
``AddPaddingMask`` in the pipeline so the S4P segmentor can ignore padding.
"""
import os
import os.path as osp
from typing import List, Sequence, Union

from mmseg.datasets import BaseSegDataset

from s5_mm.registry import DATASETS

IMG_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.jp2',
                '.webp')


def parse_list_line(line: str, where: str):
    """(path, scores) from one list-file line."""
    if '\t' in line or ',' in line:
        parts = [p.strip() for p in line.replace('\t', ',').split(',')]
        parts = [p for p in parts if p]
    else:
        parts = line.split()
    try:
        scores = [float(p) for p in parts[1:]]
    except ValueError as e:
        raise ValueError(f'{where}: score columns must be numbers, got '
                         f'{parts[1:]}') from e
    return parts[0], scores


@DATASETS.register_module()
class UnlabeledImageDataset(BaseSegDataset):
    """Images without labels, from a folder (recursive) or a list file.

    Args:
        ann_file (str): list file; empty to scan ``data_prefix['img_path']``.
        img_suffix (str | Sequence[str]): suffixes kept when scanning a
            folder (case-insensitive).
        check_files (bool): check at start-up that every listed file exists
            (a stat per file; off by default for million-image lists).
        metainfo (dict, optional): e.g. the labelled set's classes, so both
            can be concatenated.
    """
    METAINFO = dict()

    def __init__(self,
                 ann_file: str = '',
                 img_suffix: Union[str, Sequence[str]] = IMG_SUFFIXES,
                 check_files: bool = False,
                 **kwargs):
        self.check_files = check_files
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(ann_file=ann_file, img_suffix=img_suffix, **kwargs)

    def _suffixes(self):
        s = self.img_suffix
        return tuple(x.lower() for x in ([s] if isinstance(s, str) else s))

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '') or ''
        if self.ann_file:
            paths, scores = self._read_list(img_dir)
        else:
            paths, scores = self._scan_folder(img_dir), None
        if self.check_files:
            missing = [p for p in paths if not osp.isfile(p)]
            if missing:
                raise FileNotFoundError(
                    f'{len(missing)} listed unlabelled image(s) do not '
                    f'exist, e.g. {missing[:3]}')
        data_list = []
        for i, path in enumerate(paths):
            info = dict(
                img_path=path,
                seg_map_path=None,
                label_map=self.label_map,
                reduce_zero_label=False,
                seg_fields=[])
            if scores is not None:
                info['scores'] = scores[i]
            data_list.append(info)
        return data_list

    def _read_list(self, img_dir: str):
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'unlabelled list file not found: {self.ann_file}')
        base = img_dir or self.data_root or osp.dirname(self.ann_file)
        paths, scores = [], []
        with open(self.ann_file, encoding='utf-8') as f:
            for n, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line.startswith('#'):
                    continue
                path, sc = parse_list_line(line, f'{self.ann_file}:{n}')
                paths.append(path if osp.isabs(path) else osp.join(base, path))
                scores.append(sc)
        if not paths:
            raise ValueError(
                f'unlabelled list file {self.ann_file} lists no images')
        return paths, scores

    def _scan_folder(self, img_dir: str) -> List[str]:
        if not img_dir or not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'unlabelled image folder not found: {img_dir!r}')
        suffixes = self._suffixes()
        paths = []
        for root, dirs, files in os.walk(img_dir, followlinks=True):
            dirs.sort()
            paths.extend(
                osp.join(root, f) for f in sorted(files)
                if f.lower().endswith(suffixes))
        if not paths:
            raise ValueError(f'no images with suffix {suffixes} under '
                             f'unlabelled folder {img_dir}')
        return paths
