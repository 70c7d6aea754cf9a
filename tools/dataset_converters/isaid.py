"""Convert the iSAID release to MMSeg's layout, in patches.

    python tools/dataset_converters/isaid.py SRC -o data/iSAID \
        [--patch-size 800] [--overlap 200] [--quadrants] [--nproc 8]

SRC is the release folder: ``{train,val,test}/images/`` with the DOTA images
``P0000.png`` and, for train/val, the semantic masks
``P0000_instance_color_RGB.png``, either extracted there (the devkit's
layout) or as the downloaded zips (``images/part*.zip``,
``Semantic_masks/images.zip``; ``Instance_masks`` is not used).

Output: ``img_dir/<split>/P0000_<y0>_<y1>_<x0>_<x1>.png`` and
``ann_dir/<split>/..._instance_color_RGB.png`` holding the 16 class ids
(0 background, 1 ship, ..., 15 harbor; 255 = padding), what MMSeg's and
s5_mm's iSAID datasets read. Patches follow the iSAID devkit: 800 x 800 with
200 px overlap, the last window moved back to the border; images smaller
than a patch are padded (image 0, label 255) instead of copied whole; the
devkit's two skipped images (P1527, P1530) are skipped. MMSeg's own setting
is ``--patch-size 896 --overlap 384``.

S5 (S4P): ``--patch-size 1024`` patches, read as four 512 x 512 quadrants by
``S5iSAIDDataset(quadrants=True)`` (configs/_base_/datasets/isaid.py); or
``--quadrants`` writes each patch's four quadrants as files (then read them
with ``quadrants=False``). The spec gives no overlap for the 1024 patches;
the default keeps the devkit's 200.
"""
import argparse
import os.path as osp
import tempfile
from functools import partial
from typing import Dict, Optional, Sequence

import cv2

from _common import (add_common_args, colour_to_ids, expand_zips, find_files,
                     make_dirs, pad_to, read_image, read_rgb, run_parallel,
                     windows, write_png)

# iSAID's semantic colour code (RGB), index = class id.
ISAID_CLASSES = ('background', 'ship', 'storage_tank', 'baseball_diamond',
                 'tennis_court', 'basketball_court', 'ground_track_field',
                 'bridge', 'large_vehicle', 'small_vehicle', 'helicopter',
                 'swimming_pool', 'roundabout', 'soccer_ball_field', 'plane',
                 'harbor')
ISAID_COLOURS = ((0, 0, 0), (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127),
                 (0, 63, 191), (0, 63, 255), (0, 127, 63), (0, 127, 127),
                 (0, 0, 127), (0, 0, 191), (0, 0, 255), (0, 191, 127),
                 (0, 127, 191), (0, 127, 255), (0, 100, 155))
DEVKIT_SKIP = ('P1527', 'P1530')
IGNORE = 255
MASK_SUFFIX = '_instance_color_RGB'


def _sub_windows(win, quadrants: bool):
    x0, y0, x1, y1 = win
    if not quadrants:
        return [win]
    hx, hy = (x0 + x1) // 2, (y0 + y1) // 2
    return [(x0, y0, hx, hy), (hx, y0, x1, hy), (x0, hy, hx, y1),
            (hx, hy, x1, y1)]


def convert_image(task, out_dir: str, patch: int, stride: int,
                  quadrants: bool, unknown: Optional[int]) -> int:
    """Patches of one image (and its mask); returns how many were written."""
    split, name, img_path, mask_path = task
    img = read_image(img_path, cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    label = None
    if mask_path is not None:
        rgb = read_rgb(mask_path)
        if rgb.shape[:2] != (h, w):
            raise ValueError(f'{mask_path} is {rgb.shape[:2]}, its image '
                             f'{img_path} is {(h, w)}')
        label = pad_to(colour_to_ids(rgb, ISAID_COLOURS, mask_path, unknown),
                       patch, patch, IGNORE)
    img = pad_to(img, patch, patch, 0)
    written = set()
    for win in windows(h, w, patch, stride):
        for x0, y0, x1, y1 in _sub_windows(win, quadrants):
            stem = f'{name}_{y0}_{y1}_{x0}_{x1}'
            if stem in written:
                continue
            written.add(stem)
            write_png(osp.join(out_dir, 'img_dir', split, stem + '.png'),
                      img[y0:y1, x0:x1])
            if label is not None:
                write_png(
                    osp.join(out_dir, 'ann_dir', split,
                             stem + MASK_SUFFIX + '.png'), label[y0:y1, x0:x1])
    return len(written)


def collect_split(src: str, split: str, tmp_dir: str, skip_incomplete: bool,
                  skip: Sequence[str]):
    """(split, name, image, mask or None) tasks of one split."""
    folder = osp.join(src, split)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'iSAID split folder not found: {folder}')
    roots = expand_zips(folder, osp.join(tmp_dir, split),
                        skip=lambda p: 'Instance_masks' in p)
    images = find_files(roots, r'(P\d+)\.png')
    masks = ({} if split == 'test' else
             find_files(roots, r'(P\d+)' + MASK_SUFFIX + r'\.png'))
    if not images:
        raise FileNotFoundError(f'no iSAID images (P*.png) in {folder} or '
                                'its zip archives')
    names = sorted(set(images) | set(masks))
    incomplete = [n for n in names if n not in images or
                  (split != 'test' and n not in masks)]
    if incomplete and not skip_incomplete:
        desc = [f'{n}.png (beside mask {masks[n]})' if n not in images
                else f'{n}{MASK_SUFFIX}.png (beside {images[n]})'
                for n in incomplete[:3]]
        raise FileNotFoundError(
            f'{split}: {len(incomplete)} image(s) lack their counterpart, '
            f'missing {desc}; pass --skip-incomplete to skip them')
    for n in incomplete:
        print(f'skipping {split}/{n}: image or mask missing')
    return [(split, n, images[n], masks.get(n)) for n in names
            if n not in incomplete and n not in skip]


def convert_isaid(src: str, out_dir: str,
                  splits: Sequence[str] = ('train', 'val', 'test'),
                  patch_size: int = 800, overlap: int = 200,
                  quadrants: bool = False, unknown_colour: str = 'error',
                  skip_incomplete: bool = False,
                  skip: Sequence[str] = DEVKIT_SKIP,
                  tmp_dir: Optional[str] = None,
                  nproc: int = 1) -> Dict[str, int]:
    """Convert; returns the number of patches written per split."""
    if not 0 <= overlap < patch_size:
        raise ValueError(f'overlap {overlap} must be in [0, patch_size '
                         f'{patch_size})')
    if quadrants and patch_size % 2:
        raise ValueError(f'--quadrants needs an even patch size, got '
                         f'{patch_size}')
    unknown = {'error': None, 'ignore': IGNORE}[unknown_colour]
    counts = {}
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        for split in splits:
            tasks = collect_split(src, split, tmp, skip_incomplete, skip)
            make_dirs(out_dir, [split],
                      ('img_dir', ) if split == 'test' else
                      ('img_dir', 'ann_dir'))
            func = partial(convert_image, out_dir=out_dir, patch=patch_size,
                           stride=patch_size - overlap, quadrants=quadrants,
                           unknown=unknown)
            print(f'{split}: {len(tasks)} images')
            counts[split] = sum(run_parallel(func, tasks, nproc))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='iSAID release folder')
    add_common_args(parser, 'data/iSAID')
    parser.add_argument('--splits', default='train,val,test')
    parser.add_argument('--patch-size', type=int, default=800)
    parser.add_argument('--overlap', type=int, default=200)
    parser.add_argument('--quadrants', action='store_true',
                        help='write the four quadrants of every patch')
    parser.add_argument('--unknown-colour', choices=('error', 'ignore'),
                        default='error',
                        help='mask colours outside the code: fail, or write '
                        'them as 255')
    parser.add_argument('--skip-incomplete', action='store_true',
                        help='skip images without mask (and masks without '
                        'image) instead of failing')
    args = parser.parse_args(argv)
    counts = convert_isaid(
        args.src, args.out_dir, splits=args.splits.split(','),
        patch_size=args.patch_size, overlap=args.overlap,
        quadrants=args.quadrants, unknown_colour=args.unknown_colour,
        skip_incomplete=args.skip_incomplete, tmp_dir=args.tmp_dir,
        nproc=args.nproc)
    print('patches written:', counts)


if __name__ == '__main__':
    main()
