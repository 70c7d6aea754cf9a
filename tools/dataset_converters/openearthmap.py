"""Convert the OpenEarthMap release to MMSeg's layout, without xBD tiles.

    python tools/dataset_converters/openearthmap.py SRC -o data/openearthmap \
        [--splits train,val,test] [--keep-xbd] [--nproc 8]

SRC is the release zip or folder: ``<city>/images/<city>_<n>.tif`` (RGB),
``<city>/labels/<city>_<n>.tif`` (ids 0 unknown, 1..8 bareland, rangeland,
developed space, road, tree, water, agriculture land, building), the split
files ``train.txt``, ``val.txt``, ``test.txt`` (one file name per line) and
``xbd_files.csv`` (``<xBD image>,<OEM file>``: tiles whose images the
release leaves out for licence reasons).

Output: ``img_dir/<split>/<city>_<n>.png`` and ``ann_dir/<split>/...png``
(label values unchanged; ``OpenEarthMapDataset`` reads them), and
``xbd_excluded.txt`` with the tiles left out. S5 removes the xBD tiles,
so they are skipped unless ``--keep-xbd`` (after adding their images with
OEM's ``compile_xbd.py``). A listed non-xBD tile whose image or (train,
val) label is missing fails, naming the files.
"""
import argparse
import os
import os.path as osp
import tempfile
from functools import partial
from typing import Dict, Optional, Sequence

import numpy as np

from _common import (add_common_args, expand_zips, extract_zip, make_dirs,
                     read_image, run_parallel, write_png)


def find_root(src: str, tmp: str) -> str:
    """The release folder: the one holding ``train.txt``."""
    if not osp.exists(src):
        raise FileNotFoundError(f'OpenEarthMap release not found: {src}')
    roots = ([extract_zip(src, osp.join(tmp, 'oem'))] if osp.isfile(src)
             else [src])
    for attempt in range(2):
        for root in roots:
            for dirpath, _, files in sorted(os.walk(root)):
                if 'train.txt' in files:
                    return dirpath
        if attempt == 0 and osp.isdir(src):
            roots = expand_zips(src, tmp)[1:]
    raise FileNotFoundError(f'no train.txt (OpenEarthMap split file) in {src} '
                            'or its zip archives')


def index_tiles(root: str) -> Dict[str, Dict[str, str]]:
    """``{'images': {file: path}, 'labels': {file: path}}`` over cities."""
    index = {'images': {}, 'labels': {}}
    for dirpath, _, files in os.walk(root):
        kind = osp.basename(dirpath)
        if kind not in index:
            continue
        for f in files:
            if f in index[kind]:
                raise ValueError(f'two OEM {kind} named {f}: '
                                 f'{index[kind][f]} and {dirpath}')
            index[kind][f] = osp.join(dirpath, f)
    return index


def read_xbd(root: str):
    """Stems of the OEM files listed in ``xbd_files.csv`` (empty if none)."""
    path = osp.join(root, 'xbd_files.csv')
    if not osp.isfile(path):
        return set()
    stems = set()
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            parts = [p.strip() for p in line.split(',')]
            if not line.strip():
                continue
            if len(parts) < 2:
                raise ValueError(f'{path}:{n}: expected "<xBD file>,<OEM '
                                 f'file>", got {line.strip()!r}')
            stems.add(osp.splitext(parts[1])[0])
    return stems


def convert_tile(task, out_dir: str) -> int:
    split, stem, img_path, label_path = task
    img = read_image(img_path)
    if img.ndim != 3 or img.shape[2] < 3 or img.dtype != np.uint8:
        raise ValueError(f'{img_path}: expected an 8-bit RGB image, got '
                         f'{img.shape} {img.dtype}')
    write_png(osp.join(out_dir, 'img_dir', split, stem + '.png'), img[..., :3])
    if label_path is not None:
        label = read_image(label_path)
        if label.ndim != 2 or label.shape != img.shape[:2]:
            raise ValueError(f'{label_path}: expected a single-band label of '
                             f'its image size {img.shape[:2]}, got '
                             f'{label.shape}')
        write_png(osp.join(out_dir, 'ann_dir', split, stem + '.png'),
                  label.astype(np.uint8))
    return 1


def convert_openearthmap(src: str, out_dir: str,
                         splits: Sequence[str] = ('train', 'val', 'test'),
                         keep_xbd: bool = False,
                         tmp_dir: Optional[str] = None,
                         nproc: int = 1) -> Dict[str, int]:
    """Convert; returns the number of tiles per split."""
    counts = {}
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        root = find_root(src, tmp)
        index = index_tiles(root)
        xbd = set() if keep_xbd else read_xbd(root)
        excluded = []
        for split in splits:
            list_file = osp.join(root, f'{split}.txt')
            if not osp.isfile(list_file):
                raise FileNotFoundError(f'OEM split file not found: '
                                        f'{list_file}')
            with open(list_file, encoding='utf-8') as f:
                files = [ln.strip() for ln in f if ln.strip()]
            tasks, missing = [], []
            for name in files:
                stem = osp.splitext(name)[0]
                if stem in xbd:
                    excluded.append(stem)
                    continue
                img, lab = index['images'].get(name), index['labels'].get(name)
                if img is None:
                    missing.append(f'{name} (image)')
                if lab is None and split != 'test':
                    missing.append(f'{name} (label)')
                tasks.append((split, stem, img, lab))
            if missing:
                raise FileNotFoundError(
                    f'{list_file}: {len(missing)} listed file(s) not found '
                    f'under {root}/<city>/{{images,labels}}/, e.g. '
                    f'{missing[:4]}')
            has_labels = any(t[3] is not None for t in tasks)
            make_dirs(out_dir, [split], ('img_dir', 'ann_dir')
                      if has_labels else ('img_dir', ))
            print(f'openearthmap {split}: {len(tasks)} tiles')
            counts[split] = sum(
                run_parallel(partial(convert_tile, out_dir=out_dir), tasks,
                             nproc))
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, 'xbd_excluded.txt'), 'w') as f:
            f.writelines(s + '\n' for s in excluded)
    print(f'xBD tiles left out: {len(excluded)}')
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='OpenEarthMap release zip or folder')
    add_common_args(parser, 'data/openearthmap')
    parser.add_argument('--splits', default='train,val,test')
    parser.add_argument('--keep-xbd', action='store_true',
                        help='keep the xBD tiles (their images added)')
    args = parser.parse_args(argv)
    counts = convert_openearthmap(args.src, args.out_dir,
                                  args.splits.split(','), args.keep_xbd,
                                  args.tmp_dir, args.nproc)
    print('tiles written:', counts)


if __name__ == '__main__':
    main()
