"""DOTA (v1.0 / v1.5 / v2.0) for oriented detection, on MMRotate's
``DOTADataset``, plus the DOTA format pieces the split / merge tools and the
submission writer share.

Label files (``labelTxt``): optional ``imagesource:`` / ``gsd:`` header
lines, then one object per line, ``x1 y1 x2 y2 x3 y3 x4 y4 class
difficulty``. Patches cut by ``tools/dataset_converters/dota_split.py`` are
named ``{image}__{window}__{x}___{y}`` (MMRotate's convention, which its
``DOTAMetric`` parses too).
"""
import glob
import os
import os.path as osp
import re
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from mmrotate.datasets import DOTADataset, DOTAv2Dataset, DOTAv15Dataset
from mmrotate.registry import DATASETS

PATCH_RE = re.compile(r'^(?P<ori>.+)__(?P<size>\d+)__(?P<x>-?\d+)___'
                      r'(?P<y>-?\d+)$')
IMG_SUFFIXES = ('png', 'jpg', 'jpeg', 'tif', 'tiff', 'bmp')


# ------------------------------------------------------------ label files
def polygon_area(poly: Sequence[float]) -> float:
    """Shoelace area of a polygon given as ``x1 y1 x2 y2 ...``."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) -
                           np.dot(y, np.roll(x, -1))))


def parse_dota_txt(path: str,
                   classes: Optional[Sequence[str]] = None,
                   on_unknown_class: str = 'error',
                   min_poly_area: float = 1.0,
                   warnings: Optional[List[str]] = None
                   ) -> Tuple[List[dict], Dict[str, str]]:
    """Objects of one DOTA label file.

    Returns ``(objects, header)``: each object ``dict(poly=[8 floats],
    name=str, difficulty=int, line=int)``, and the header fields (e.g.
    ``{'gsd': '0.11'}``).

    Args:
        classes: Known class names; ``None`` accepts every name.
        on_unknown_class: ``'error'`` (raise, naming file and line) or
            ``'skip'`` (drop the object, noted in ``warnings``).
        min_poly_area: Objects whose polygon is smaller (px^2, e.g. four
            equal or collinear corners) are dropped and noted.
        warnings: A list the skip notes are appended to.

    Raises:
        ValueError: a malformed line (fields, numbers), naming file and line.
        KeyError: an unknown class with ``on_unknown_class='error'``.
    """
    if on_unknown_class not in ('error', 'skip'):
        raise ValueError("on_unknown_class must be 'error' or 'skip', got "
                         f'{on_unknown_class!r}')
    known = None if classes is None else set(classes)
    objects, header = [], {}
    notes = warnings if warnings is not None else []
    with open(path) as f:
        lines = f.read().splitlines()
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if ':' in fields[0] and len(fields) < 9:  # imagesource:, gsd:
            key, _, value = line.strip().partition(':')
            header[key.strip()] = value.strip()
            continue
        if len(fields) not in (9, 10):
            raise ValueError(f'{path}:{lineno}: expected 8 corner '
                             'coordinates, a class and a difficulty, got '
                             f'{len(fields)} fields: {line!r}')
        try:
            poly = [float(v) for v in fields[:8]]
            difficulty = int(fields[9]) if len(fields) == 10 else 0
        except ValueError:
            raise ValueError(f'{path}:{lineno}: non-numeric corner or '
                             f'difficulty in {line!r}') from None
        name = fields[8]
        if known is not None and name not in known:
            if on_unknown_class == 'error':
                raise KeyError(f'{path}:{lineno}: class {name!r} is not a '
                               f'class of this dataset {tuple(classes)} '
                               "(on_unknown_class='skip' drops such objects)")
            notes.append(f'{path}:{lineno}: unknown class {name!r}, object '
                         'skipped')
            continue
        if not np.isfinite(poly).all() or polygon_area(poly) < min_poly_area:
            notes.append(f'{path}:{lineno}: degenerate polygon {poly} (area '
                         f'< {min_poly_area} px^2), object skipped')
            continue
        objects.append(
            dict(poly=poly, name=name, difficulty=difficulty, line=lineno))
    return objects, header


def format_dota_line(poly: Sequence[float], name: str,
                     difficulty: int) -> str:
    """One label-file line (coordinates with up to 2 decimals)."""
    coords = ' '.join(f'{float(v):.2f}'.rstrip('0').rstrip('.')
                      for v in poly)
    return f'{coords} {name} {int(difficulty)}'


# ----------------------------------------------------------- patch names
def patch_name(ori_id: str, window: int, x: int, y: int) -> str:
    """``{ori_id}__{window}__{x}___{y}``: the image, the window size in
    original pixels and the window's top-left corner."""
    return f'{ori_id}__{int(window)}__{int(x)}___{int(y)}'


def parse_patch_name(name: str) -> Tuple[str, int, int, int]:
    """``(ori_id, window, x, y)`` of a patch name (file suffix allowed)."""
    stem, ext = osp.splitext(osp.basename(name))
    if ext[1:].lower() not in IMG_SUFFIXES + ('txt', ):
        stem = osp.basename(name)  # no file suffix
    m = PATCH_RE.match(stem)
    if m is None:
        raise ValueError(f'{name!r} is not a DOTA patch name '
                         '"{image}__{window}__{x}___{y}" (as written by '
                         'tools/dataset_converters/dota_split.py)')
    return m['ori'], int(m['size']), int(m['x']), int(m['y'])


# ---------------------------------------------------- merging predictions
def merge_patch_dets(results: Sequence[dict], num_classes: int,
                     iou_thr: float = 0.1) -> Dict[str, List[np.ndarray]]:
    """Patch predictions -> full-image predictions.

    Args:
        results: One dict per patch: ``img_id`` (a patch name), ``bboxes``
            ((n, 5) rotated boxes in patch pixels), ``scores`` (n,),
            ``labels`` (n,).
        num_classes: Number of classes.
        iou_thr: Rotated-NMS IoU threshold per class on the full image
            (mmcv ``nms_rotated``; 0.1 as in MMRotate's DOTA merge).

    Returns:
        ``{ori_id: [per class (m, 6) array x, y, w, h, t, score]}``, sorted
        by descending score.
    """
    import torch
    from mmcv.ops import nms_rotated

    collected = defaultdict(list)
    for res in results:
        ori, _, x, y = parse_patch_name(str(res['img_id']))
        boxes = np.asarray(res['bboxes'], dtype=np.float32).reshape(-1, 5)
        boxes = boxes.copy()
        boxes[:, :2] += np.array([x, y], dtype=np.float32)
        scores = np.asarray(res['scores'], dtype=np.float32).reshape(-1, 1)
        labels = np.asarray(res['labels']).reshape(-1, 1).astype(np.float32)
        collected[ori].append(np.hstack([labels, boxes, scores]))
    merged = {}
    for ori, parts in collected.items():
        dets = np.concatenate(parts, 0)
        per_class = []
        for c in range(num_classes):
            d = dets[dets[:, 0] == c, 1:]
            if len(d):
                t = torch.from_numpy(d)
                kept, _ = nms_rotated(t[:, :5], t[:, 5], iou_thr)
                d = kept.numpy()
            per_class.append(d.reshape(-1, 6))
        merged[ori] = per_class
    return merged


def write_task1_files(merged: Dict[str, List[np.ndarray]],
                      classes: Sequence[str], out_dir: str,
                      zip_name: Optional[str] = None) -> List[str]:
    """DOTA server submission (Task 1, oriented boxes): one
    ``Task1_{class}.txt`` per class, lines ``image score x1 y1 ... x4 y4``;
    optionally zipped to ``out_dir/zip_name``. Returns the written files."""
    import torch
    from mmrotate.structures.bbox import rbox2qbox

    os.makedirs(out_dir, exist_ok=True)
    files = []
    for c, cls in enumerate(classes):
        path = osp.join(out_dir, f'Task1_{cls}.txt')
        with open(path, 'w') as f:
            for ori in sorted(merged):
                dets = merged[ori][c]
                if not len(dets):
                    continue
                qboxes = rbox2qbox(torch.from_numpy(
                    np.ascontiguousarray(dets[:, :5]))).numpy()
                for q, s in zip(qboxes, dets[:, 5]):
                    f.write(' '.join([ori, f'{float(s):.4f}'] +
                                     [f'{v:.2f}' for v in q]) + '\n')
        files.append(path)
    if zip_name:
        import zipfile
        zpath = osp.join(out_dir, zip_name)
        with zipfile.ZipFile(zpath, 'w', zipfile.ZIP_DEFLATED) as z:
            for p in files:
                z.write(p, osp.basename(p))
        files.append(zpath)
    return files


# ---------------------------------------------------------------- dataset
@DATASETS.register_module()
class S5DOTADataset(DOTADataset):
    """MMRotate's DOTA-v1.0 dataset with a ``dataset_name`` on every sample
    and clear handling of bad input.

    ``ann_file`` is the label folder (``labelTxt`` of the release or of
    ``dota_split.py``; '' for unlabelled test images), ``data_prefix``'s
    ``img_path`` the image folder. Differences from the parent:

    - release label files with an ``imagesource:`` / ``gsd:`` header are
      read (the header goes to the sample's ``gsd``);
    - a class the dataset does not know raises, naming the file and line, or
      with ``on_unknown_class='skip'`` the object is skipped and logged;
    - degenerate polygons (area < ``min_poly_area``) are skipped and logged;
    - an image without its label file is skipped and logged (``'error'``:
      raise); a label file without its image raises;
    - samples are sorted by name (glob order is not reproducible).

    Every skip note is also kept in ``self.load_warnings``.

    Args:
        dataset_name (str): Written to every sample (multi-dataset routing;
            list it in ``PackDetInputs(meta_keys=...)``).
        diff_thr (int): Objects with difficulty > ``diff_thr`` get
            ``ignore_flag`` (MMRotate's meaning): 100 for training (all
            used), 0 for evaluation by the DOTA protocol (difficult objects
            are neither missed nor matched; ``dota_split.py`` marks objects
            cut by a patch with difficulty 2).
        on_unknown_class (str): 'error' or 'skip'.
        on_missing_ann (str): An image without label file: 'skip' or 'error'.
        min_poly_area (float): Smallest polygon area kept, in px^2.
    """

    def __init__(self,
                 dataset_name: str = 'dota',
                 on_unknown_class: str = 'error',
                 on_missing_ann: str = 'skip',
                 min_poly_area: float = 1.0,
                 **kwargs) -> None:
        if on_missing_ann not in ('error', 'skip'):
            raise ValueError("on_missing_ann must be 'error' or 'skip', got "
                             f'{on_missing_ann!r}')
        if on_unknown_class not in ('error', 'skip'):
            raise ValueError("on_unknown_class must be 'error' or 'skip', "
                             f'got {on_unknown_class!r}')
        self.dataset_name = dataset_name
        self.on_unknown_class = on_unknown_class
        self.on_missing_ann = on_missing_ann
        self.min_poly_area = float(min_poly_area)
        self.load_warnings: List[str] = []
        super().__init__(**kwargs)
        # in the metainfo too: a metric picks its dataset's classes from a
        # ConcatDataset's list of metainfos by this name (set here, not
        # through ``metainfo=``, which tries string values as file paths)
        self._metainfo['dataset_name'] = dataset_name

    def _warn(self, msg: str) -> None:
        self.load_warnings.append(msg)
        print_log(msg, logger='current', level=30)

    def _images(self) -> Dict[str, str]:
        """``{image id: path}`` of the image folder (when it is local)."""
        img_dir = self.data_prefix.get('img_path', '')
        if not osp.isdir(img_dir):
            return {}
        return {
            osp.splitext(f)[0]: osp.join(img_dir, f)
            for f in sorted(os.listdir(img_dir))
            if f.endswith('.' + self.img_suffix)
        }

    def load_data_list(self) -> List[dict]:
        if self.ann_file == '':  # unlabelled test images
            data_list = sorted(super().load_data_list(),
                               key=lambda d: d['img_id'])
            for d in data_list:
                d['instances'] = []
                d['dataset_name'] = self.dataset_name
            return data_list
        if not osp.isdir(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: ann_file must be the folder of DOTA '
                f'label files (labelTxt), {self.ann_file} is not a folder')
        txt_files = sorted(glob.glob(osp.join(self.ann_file, '*.txt')))
        if not txt_files:
            raise ValueError(f'there is no label file (*.txt) in '
                             f'{self.ann_file}')
        images = self._images()
        ids = [osp.basename(t)[:-4] for t in txt_files]
        unlabelled = sorted(set(images) - set(ids))
        if unlabelled:
            msg = (f'{len(unlabelled)} image(s) in '
                   f"{self.data_prefix['img_path']} have no label file in "
                   f'{self.ann_file}: '
                   + ', '.join(images[i] for i in unlabelled[:10]) +
                   (' ...' if len(unlabelled) > 10 else ''))
            if self.on_missing_ann == 'error':
                raise FileNotFoundError(msg)
            self._warn(msg + ' (skipped)')
        cls_map = {c: i for i, c in enumerate(self.metainfo['classes'])}
        data_list = []
        for txt, img_id in zip(txt_files, ids):
            img_name = f'{img_id}.{self.img_suffix}'
            img_path = osp.join(self.data_prefix['img_path'], img_name)
            if images and img_id not in images:
                raise FileNotFoundError(f'{txt}: its image {img_path} does '
                                        'not exist')
            notes: List[str] = []
            objects, header = parse_dota_txt(
                txt, self.metainfo['classes'], self.on_unknown_class,
                self.min_poly_area, notes)
            for n in notes:
                self._warn(n)
            instances = [
                dict(bbox=o['poly'], bbox_label=cls_map[o['name']],
                     ignore_flag=int(o['difficulty'] > self.diff_thr))
                for o in objects
            ]
            info = dict(img_id=img_id, file_name=img_name, img_path=img_path,
                        instances=instances, dataset_name=self.dataset_name)
            if 'gsd' in header:
                info['gsd'] = header['gsd']
            data_list.append(info)
        return data_list


@DATASETS.register_module()
class S5DOTAv15Dataset(S5DOTADataset, DOTAv15Dataset):
    """DOTA-v1.5 (16 classes) with the behaviour of :class:`S5DOTADataset`."""


@DATASETS.register_module()
class S5DOTAv2Dataset(S5DOTADataset, DOTAv2Dataset):
    """DOTA-v2.0 (18 classes) with the behaviour of :class:`S5DOTADataset`."""


# release version -> dataset class (the splitter's and merger's --version)
DOTA_VERSIONS = {
    '1.0': S5DOTADataset,
    '1.5': S5DOTAv15Dataset,
    '2.0': S5DOTAv2Dataset
}


def dota_classes(version: str) -> List[str]:
    """Class names of DOTA ``version`` ('1.0', '1.5' or '2.0')."""
    if version not in DOTA_VERSIONS:
        raise KeyError(f'unknown DOTA version {version!r}; known: '
                       f'{sorted(DOTA_VERSIONS)}')
    return list(DOTA_VERSIONS[version].METAINFO['classes'])
