"""Split DOTA images (v1.0 / v1.5 / v2.0) into patches with their labels.

    python tools/dataset_converters/dota_split.py \
        --img-dirs data/DOTA/train/images data/DOTA/val/images \
        --ann-dirs data/DOTA/train/labelTxt data/DOTA/val/labelTxt \
        -o data/split_ss_dota2/trainval [--patch-size 1024] [--gap 200] \
        [--rates 1.0] [--iof-thr 0.7] [--nproc 8]
    # multi-scale (the usual DOTA 'ms' setting)
    ... --rates 0.5 1.0 1.5
    # the test set (no labels): leave out --ann-dirs

Output: ``images/{id}__{window}__{x}___{y}.png`` and ``labelTxt/`` with the
same names (DOTA lines without header, corners in patch pixels), what
``S5DOTADataset`` / MMRotate's ``DOTADataset`` read and what
``tools/dota_merge.py`` / ``RotatedVOCMetric(merge_patches=True)`` merge
back (the window size and position are in the name).

Windows: ``patch_size`` with ``gap`` pixels of overlap, the last window of a
row / column moved back to the border; an image smaller than a patch gives
one window, padded to the patch size (``--padding-value``; ``--no-padding``
keeps it small). ``--rates r`` cuts windows of ``patch_size / r`` original
pixels (the training pipeline resizes them to ``patch_size``), so merged
predictions only need the window offset. Windows covering less than
``--img-rate-thr`` of image are dropped (unless all are).

Objects: an object belongs to every window that holds at least
``--iof-thr`` of its polygon area (intersection over the object's area); it
keeps its full polygon (corners may lie outside the patch), and if the
window cuts it (IoF < 1) its difficulty becomes ``--cut-difficulty``
(default 2, as the DOTA devkit), which ``diff_thr`` 0 or 1 ignores in
evaluation. Label lines that cannot be read stop the split with the file and
line; objects of unknown classes (``--classes``) or with degenerate polygons
are skipped and reported.
"""
import argparse
import os
import os.path as osp
from functools import partial
from typing import List, Optional, Sequence, Tuple

import numpy as np
from _common import read_image, run_parallel, window_starts, write_png

from s5_mm.datasets.dota import (DOTA_VERSIONS, IMG_SUFFIXES, dota_classes,
                                 format_dota_line, parse_dota_txt,
                                 patch_name)


def sliding_windows(width: int, height: int, sizes: Sequence[int],
                    gaps: Sequence[int],
                    img_rate_thr: float = 0.6) -> np.ndarray:
    """(k, 4) int windows ``x0, y0, x1, y1`` in image pixels."""
    wins = set()
    for size, gap in zip(sizes, gaps):
        if not 0 <= gap < size:
            raise ValueError(f'gap {gap} must be in [0, patch size {size})')
        step = size - gap
        for y in window_starts(height, size, step):
            for x in window_starts(width, size, step):
                wins.add((x, y, x + size, y + size))
    wins = np.array(sorted(wins, key=lambda w: (w[2] - w[0], w[1], w[0])),
                    dtype=np.int64).reshape(-1, 4)
    inside_w = np.minimum(wins[:, 2], width) - wins[:, 0]
    inside_h = np.minimum(wins[:, 3], height) - wins[:, 1]
    rate = inside_w * inside_h / ((wins[:, 2] - wins[:, 0]) *
                                  (wins[:, 3] - wins[:, 1]))
    keep = rate >= img_rate_thr
    if not keep.any():  # a small image: keep its best-filled windows
        keep = rate >= rate.max() - 1e-6
    return wins[keep]


def objects_iof(polys: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """(n, k) intersection of each polygon with each window over the
    polygon's area (mmcv ``box_iou_quadri``, mode 'iof')."""
    import torch
    from mmcv.ops import box_iou_quadri
    if not len(polys) or not len(wins):
        return np.zeros((len(polys), len(wins)), np.float32)
    x0, y0, x1, y1 = (wins[:, i].astype(np.float32) for i in range(4))
    quads = np.stack([x0, y0, x1, y0, x1, y1, x0, y1], 1)
    return box_iou_quadri(
        torch.from_numpy(np.asarray(polys, np.float32)),
        torch.from_numpy(quads), mode='iof').numpy()


def window_objects(objects: List[dict], wins: np.ndarray, iof_thr: float,
                   cut_difficulty: int) -> List[List[dict]]:
    """Objects of each window, corners shifted to the window; cut objects
    (IoF < 1) get ``cut_difficulty``."""
    polys = np.array([o['poly'] for o in objects],
                     np.float32).reshape(-1, 8)
    iof = objects_iof(polys, wins)
    out = []
    for k, (x0, y0, _, _) in enumerate(wins):
        objs = []
        for i in np.nonzero(iof[:, k] >= iof_thr)[0]:
            o = objects[i]
            poly = polys[i].copy()
            poly[0::2] -= x0
            poly[1::2] -= y0
            cut = iof[i, k] < 1 - 1e-4
            objs.append(dict(poly=poly.tolist(), name=o['name'],
                             difficulty=max(o['difficulty'], cut_difficulty)
                             if cut else o['difficulty']))
        out.append(objs)
    return out


def split_image(task: Tuple[str, Optional[str]], out_dir: str,
                sizes: Sequence[int], gaps: Sequence[int], iof_thr: float,
                img_rate_thr: float, cut_difficulty: int, padding: bool,
                padding_value: Sequence[int], classes: Optional[Sequence[str]],
                ext: str) -> Tuple[int, int, List[str]]:
    """Patches of one image; returns (patches, objects written, notes)."""
    img_path, ann_path = task
    img = read_image(img_path)
    if img.ndim == 2:
        img = img[..., None]
    h, w = img.shape[:2]
    img_id = osp.splitext(osp.basename(img_path))[0]
    notes: List[str] = []
    objects = []
    if ann_path is not None:
        objects, _ = parse_dota_txt(ann_path, classes, 'skip', 1.0, notes)
    wins = sliding_windows(w, h, sizes, gaps, img_rate_thr)
    per_win = window_objects(objects, wins, iof_thr, cut_difficulty) \
        if ann_path is not None else [None] * len(wins)
    n_obj = 0
    value = np.array(padding_value, dtype=img.dtype)
    for (x0, y0, x1, y1), objs in zip(wins, per_win):
        patch = img[y0:y1, x0:x1]
        if padding and patch.shape[:2] != (y1 - y0, x1 - x0):
            full = np.empty((y1 - y0, x1 - x0, img.shape[2]), img.dtype)
            full[...] = value[:img.shape[2]] if value.size > 1 else value
            full[:patch.shape[0], :patch.shape[1]] = patch
            patch = full
        name = patch_name(img_id, x1 - x0, x0, y0)
        write_png(osp.join(out_dir, 'images', f'{name}.{ext}'),
                  patch[..., 0] if patch.shape[2] == 1 else patch)
        if objs is not None:
            with open(osp.join(out_dir, 'labelTxt', f'{name}.txt'), 'w') as f:
                f.writelines(
                    format_dota_line(o['poly'], o['name'], o['difficulty']) +
                    '\n' for o in objs)
            n_obj += len(objs)
    return len(wins), n_obj, notes


def collect_tasks(img_dirs: Sequence[str],
                  ann_dirs: Optional[Sequence[str]]
                  ) -> List[Tuple[str, Optional[str]]]:
    """(image, label file or None) pairs; an image without its label file
    stops the split, naming both."""
    if ann_dirs and len(ann_dirs) != len(img_dirs):
        raise ValueError(f'{len(img_dirs)} image folders but '
                         f'{len(ann_dirs)} label folders')
    tasks = []
    for i, img_dir in enumerate(img_dirs):
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'image folder not found: {img_dir}')
        names = sorted(f for f in os.listdir(img_dir)
                       if f.rsplit('.', 1)[-1].lower() in IMG_SUFFIXES)
        if not names:
            raise FileNotFoundError(f'no image in {img_dir}')
        for f in names:
            ann = None
            if ann_dirs:
                ann = osp.join(ann_dirs[i], osp.splitext(f)[0] + '.txt')
                if not osp.isfile(ann):
                    raise FileNotFoundError(
                        f'{osp.join(img_dir, f)} has no label file {ann}')
            tasks.append((osp.join(img_dir, f), ann))
    return tasks


def split_dota(img_dirs: Sequence[str],
               out_dir: str,
               ann_dirs: Optional[Sequence[str]] = None,
               patch_size: int = 1024,
               gap: int = 200,
               rates: Sequence[float] = (1.0, ),
               iof_thr: float = 0.7,
               img_rate_thr: float = 0.6,
               cut_difficulty: int = 2,
               padding: bool = True,
               padding_value: Sequence[int] = (104, 116, 124),
               classes: Optional[Sequence[str]] = None,
               ext: str = 'png',
               nproc: int = 1) -> dict:
    """Split every image; returns counts (images, patches, objects) and the
    skip notes."""
    if not 0 < iof_thr <= 1:
        raise ValueError(f'iof_thr must be in (0, 1], got {iof_thr}')
    sizes = [int(round(patch_size / r)) for r in rates]
    gaps = [int(round(gap / r)) for r in rates]
    tasks = collect_tasks(img_dirs, ann_dirs)
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    if ann_dirs:
        os.makedirs(osp.join(out_dir, 'labelTxt'), exist_ok=True)
    func = partial(split_image, out_dir=out_dir, sizes=sizes, gaps=gaps,
                   iof_thr=iof_thr, img_rate_thr=img_rate_thr,
                   cut_difficulty=cut_difficulty, padding=padding,
                   padding_value=padding_value, classes=classes, ext=ext)
    res = run_parallel(func, tasks, nproc)
    notes = [n for r in res for n in r[2]]
    return dict(images=len(tasks), patches=sum(r[0] for r in res),
                objects=sum(r[1] for r in res), notes=notes)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--img-dirs', nargs='+', required=True)
    p.add_argument('--ann-dirs', nargs='+', default=None,
                   help='label folders, one per image folder (none: the '
                   'test set, images only)')
    p.add_argument('-o', '--out-dir', required=True)
    p.add_argument('--patch-size', type=int, default=1024)
    p.add_argument('--gap', type=int, default=200)
    p.add_argument('--rates', type=float, nargs='+', default=[1.0],
                   help='image scales (multi-scale: 0.5 1.0 1.5)')
    p.add_argument('--iof-thr', type=float, default=0.7)
    p.add_argument('--img-rate-thr', type=float, default=0.6)
    p.add_argument('--cut-difficulty', type=int, default=2)
    p.add_argument('--no-padding', action='store_true')
    p.add_argument('--padding-value', type=int, nargs='+',
                   default=[104, 116, 124])
    p.add_argument('--version', choices=sorted(DOTA_VERSIONS), default=None,
                   help="keep only this DOTA version's classes (others are "
                   'skipped and reported)')
    p.add_argument('--ext', default='png')
    p.add_argument('--nproc', type=int, default=max(1, os.cpu_count() or 1))
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    classes = dota_classes(args.version) if args.version else None
    res = split_dota(args.img_dirs, args.out_dir, args.ann_dirs,
                     args.patch_size, args.gap, args.rates, args.iof_thr,
                     args.img_rate_thr, args.cut_difficulty,
                     not args.no_padding, args.padding_value, classes,
                     args.ext, args.nproc)
    for n in res['notes'][:20]:
        print(n)
    if len(res['notes']) > 20:
        print(f'... {len(res["notes"]) - 20} more notes')
    print(f"{res['images']} images -> {res['patches']} patches, "
          f"{res['objects']} objects in {args.out_dir}")
    return res


if __name__ == '__main__':
    main()
