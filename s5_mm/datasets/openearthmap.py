"""OpenEarthMap (OEM) with S5's protocol: 9 classes incl. 'unknown', xBD
tiles excluded.

Release masks hold 0..8: 0 = unknown (unlabelled), 1 bareland, 2 rangeland,
3 developed space, 4 road, 5 tree, 6 water, 7 agriculture land, 8 building.
Choice: S5 reports OEM over 9 classes including 'unknown', as OEM's own
baseline trains 9 outputs, so mask values are class ids as they are
(``reduce_zero_label=False``, 'unknown' is class 0). For the 8-class
protocol pass ``metainfo=dict(classes=OEM_8_CLASSES)``: ``label_map`` then
maps 0 to 255 and 1..8 to 0..7.

xBD tiles: OEM's release lacks their images (licence) and lists them in
``xbd_files.csv`` (``<xBD file>,<OEM file>``). S5 leaves them out: the
converter skips them, and ``exclude_list`` drops them (or any listed tile)
from a folder or a split list, matched on the file stem; any column of the
list file counts (comma or whitespace separated).

Layout (``data_root``, ``tools/dataset_converters/openearthmap.py``):
``img_dir/{train,val,test}/<city>_<n>.png``, ``ann_dir/...`` the same, or a
split list (see ``seg_lists``), e.g. into the release's
``<city>/images/<city>_<n>.tif <city>/labels/<city>_<n>.tif``.
"""
import os.path as osp
import re
from typing import List, Optional, Set

from mmseg.datasets import BaseSegDataset

from s5_mm.datasets.seg_lists import S5SegDatasetMixin
from s5_mm.registry import DATASETS

OEM_CLASSES = ('unknown', 'bareland', 'rangeland', 'developed space', 'road',
               'tree', 'water', 'agriculture land', 'building')
OEM_8_CLASSES = OEM_CLASSES[1:]
# OEM's published colour code, same order as OEM_CLASSES.
OEM_PALETTE = [[0, 0, 0], [128, 0, 0], [0, 255, 36], [148, 148, 148],
               [255, 255, 255], [34, 97, 38], [0, 69, 255], [75, 181, 73],
               [222, 31, 7]]


def read_name_list(path: str) -> Set[str]:
    """File stems named anywhere in a list or CSV file."""
    names = set()
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.lstrip().startswith('#'):
                continue
            for tok in re.split(r'[,\s]+', line.strip()):
                if tok:
                    names.add(osp.splitext(osp.basename(tok))[0])
    return names


@DATASETS.register_module()
class OpenEarthMapDataset(S5SegDatasetMixin, BaseSegDataset):
    """OpenEarthMap, 9 classes incl. 'unknown'; see the module doc.

    Args:
        exclude_list (str, optional): file naming tiles to drop (e.g. OEM's
            ``xbd_files.csv``); relative to ``data_root``.
        img_suffix, seg_map_suffix (str): '.png' (converter output); the
            release's GeoTIFFs are '.tif'.
    """
    METAINFO = dict(classes=OEM_CLASSES, palette=OEM_PALETTE)
    DEFAULT_NAME = 'openearthmap'

    def __init__(self,
                 exclude_list: Optional[str] = None,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs):
        root = kwargs.get('data_root')
        if exclude_list and root and not osp.isabs(exclude_list):
            exclude_list = osp.join(root, exclude_list)
        if exclude_list and not osp.isfile(exclude_list):
            raise FileNotFoundError(
                f'OpenEarthMapDataset: exclude_list not found: {exclude_list}')
        self.exclude_list = exclude_list
        self.num_excluded = 0
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)

    def filter_samples(self, data_list: List[dict]) -> List[dict]:
        if not self.exclude_list:
            return data_list
        drop = read_name_list(self.exclude_list)
        kept = [d for d in data_list
                if osp.splitext(osp.basename(d['img_path']))[0] not in drop]
        self.num_excluded = len(data_list) - len(kept)
        return kept
