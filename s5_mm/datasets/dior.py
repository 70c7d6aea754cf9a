"""DIOR-R (oriented DIOR) on MMRotate's ``DIORDataset``.

Release layout under ``data_root``: ``JPEGImages-trainval/``,
``JPEGImages-test/``, ``Annotations/Oriented Bounding Boxes/{id}.xml`` (VOC
XML, one ``robndbox`` with four corners per object, and ``difficult``),
``ImageSets/Main/{train,val,test}.txt`` (image ids; ``ann_file=''`` takes
every XML file of the annotation folder).
"""
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import List

from mmengine.fileio import list_from_file
from mmengine.logging import print_log
from mmrotate.datasets import DIORDataset
from mmrotate.registry import DATASETS

from s5_mm.datasets.dota import polygon_area

CORNERS = ('x_left_top', 'y_left_top', 'x_right_top', 'y_right_top',
           'x_right_bottom', 'y_right_bottom', 'x_left_bottom',
           'y_left_bottom')


@DATASETS.register_module()
class S5DIORDataset(DIORDataset):
    """MMRotate's DIOR-R dataset (20 classes, oriented boxes) with a
    ``dataset_name`` on every sample, the ``difficult`` flag and clear
    handling of bad input:

    - a class the dataset does not know raises, naming the XML file and the
      object, or with ``on_unknown_class='skip'`` is skipped and logged
      (names are compared in lower case, as in MMRotate);
    - objects without a complete ``robndbox`` raise, naming the file;
    - degenerate polygons (area < ``min_poly_area``) are skipped and logged;
    - an image id of ``ann_file`` without its XML file is skipped and logged
      (``on_missing_ann='error'``: raise).

    Every skip note is also kept in ``self.load_warnings``.

    Args:
        dataset_name (str): Written to every sample.
        diff_thr (int): Objects with ``difficult`` > ``diff_thr`` get
            ``ignore_flag`` (as MMRotate's DOTA): 100 keeps all (training),
            0 ignores difficult objects (the VOC protocol of evaluation).
        on_unknown_class, on_missing_ann (str): 'error' or 'skip'.
        min_poly_area (float): Smallest polygon area kept, in px^2.
        img_suffix (str): Image file suffix.
    """

    def __init__(self,
                 dataset_name: str = 'dior',
                 diff_thr: int = 100,
                 on_unknown_class: str = 'error',
                 on_missing_ann: str = 'skip',
                 min_poly_area: float = 1.0,
                 img_suffix: str = 'jpg',
                 **kwargs) -> None:
        for key, value in (('on_unknown_class', on_unknown_class),
                           ('on_missing_ann', on_missing_ann)):
            if value not in ('error', 'skip'):
                raise ValueError(f"{key} must be 'error' or 'skip', got "
                                 f'{value!r}')
        self.dataset_name = dataset_name
        self.diff_thr = diff_thr
        self.on_unknown_class = on_unknown_class
        self.on_missing_ann = on_missing_ann
        self.min_poly_area = float(min_poly_area)
        self.img_suffix = img_suffix
        self.load_warnings: List[str] = []
        super().__init__(**kwargs)
        # in the metainfo too: a metric picks its dataset's classes from a
        # ConcatDataset's list of metainfos by this name (set here, not
        # through ``metainfo=``, which tries string values as file paths)
        self._metainfo['dataset_name'] = dataset_name

    def _warn(self, msg: str) -> None:
        self.load_warnings.append(msg)
        print_log(msg, logger='current', level=30)

    def load_data_list(self) -> List[dict]:
        if self.ann_type != 'obb':
            raise ValueError(f"{type(self).__name__} reads oriented boxes "
                             f"(ann_type='obb'), got {self.ann_type!r}")
        self.cat2label = {
            c.lower(): i
            for i, c in enumerate(self.metainfo['classes'])
        }
        ann_dir = osp.join(self.data_root, self.ann_subdir)
        if self.ann_file:
            ids = list_from_file(self.ann_file, backend_args=self.backend_args)
        else:  # no split list: every XML file of the annotation folder
            ids = sorted(f[:-4] for f in os.listdir(ann_dir)
                         if f.endswith('.xml'))
        data_list = []
        for img_id in ids:
            img_id = img_id.strip()
            if not img_id:
                continue
            xml_path = osp.join(ann_dir, f'{img_id}.xml')
            if not osp.isfile(xml_path):
                msg = (f'{self.ann_file}: image {img_id} has no annotation '
                       f'file {xml_path}')
                if self.on_missing_ann == 'error':
                    raise FileNotFoundError(msg)
                self._warn(msg + ' (skipped)')
                continue
            data_list.append(
                self.parse_data_info(
                    dict(img_id=img_id,
                         file_name=f'{img_id}.{self.img_suffix}',
                         xml_path=xml_path)))
        return data_list

    def parse_data_info(self, img_info: dict) -> dict:
        xml_path = img_info['xml_path']
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as e:
            raise ValueError(f'{xml_path}: not valid XML ({e})') from None
        img_path = osp.join(self.data_prefix['img_path'],
                            img_info['file_name'])
        size = root.find('size')
        if size is not None and size.find('width') is not None:
            width = int(float(size.find('width').text))
            height = int(float(size.find('height').text))
        else:  # no size in the XML: read it from the image
            import mmcv
            height, width = mmcv.imread(img_path).shape[:2]
        instances = []
        for k, obj in enumerate(root.findall('object')):
            name = (obj.findtext('name') or '').strip()
            where = f'{xml_path}: object {k} ({name!r})'
            label = self.cat2label.get(name.lower())
            if label is None:
                if self.on_unknown_class == 'error':
                    raise KeyError(
                        f'{where}: class {name!r} is not a class of this '
                        f"dataset {tuple(self.metainfo['classes'])} "
                        "(on_unknown_class='skip' drops such objects)")
                self._warn(f'{where}: unknown class, object skipped')
                continue
            box = obj.find('robndbox')
            if box is None or any(box.find(c) is None for c in CORNERS):
                raise ValueError(f'{where}: no complete <robndbox> with '
                                 f'{CORNERS}')
            try:
                poly = [float(box.find(c).text) for c in CORNERS]
            except (TypeError, ValueError):
                raise ValueError(f'{where}: non-numeric <robndbox> corner')
            if polygon_area(poly) < self.min_poly_area:
                self._warn(f'{where}: degenerate polygon {poly} (area < '
                           f'{self.min_poly_area} px^2), object skipped')
                continue
            difficult = int(float(obj.findtext('difficult') or 0))
            instances.append(
                dict(bbox=poly, bbox_label=label, difficult=difficult,
                     ignore_flag=int(difficult > self.diff_thr)))
        return dict(img_path=img_path, img_id=img_info['img_id'],
                    xml_path=xml_path, height=height, width=width,
                    instances=instances, dataset_name=self.dataset_name)
