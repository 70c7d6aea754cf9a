"""Convert the ISPRS Vaihingen release to MMSeg's layout, in crops.

    python tools/dataset_converters/vaihingen.py SRC -o data/vaihingen \
        [--clip-size 512] [--stride 256] [--full-labels] [--nproc 8]

SRC holds the release archives (or the folders they extract to, named like
the archive without '.zip'):
- ``ISPRS_semantic_labeling_Vaihingen.zip``: ``top/top_mosaic_09cm_areaN.tif``
  (IRRG true orthophotos);
- ``ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip``:
  ``top_mosaic_09cm_areaN_noBoundary.tif`` (eroded colour labels, the
  default, as MMSeg), or with ``--full-labels``
  ``ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip``.

Output: ``{img_dir,ann_dir}/{train,val}/areaN_<x0>_<y0>_<x1>_<y1>.png``,
labels as ids 0 undefined/boundary, 1..6 impervious surface, building, low
vegetation, tree, car, clutter (MMSeg's ids; ``S5VaihingenDataset`` turns
them into S5's 5 classes with clutter ignored). Crops of ``--clip-size``
every ``--stride`` px, the last one moved back to the border. Split: the
ISPRS benchmark's 16 training areas (train) and 17 test areas (val).
"""
import argparse
import os.path as osp
import tempfile
from typing import Dict, Optional, Sequence

from _common import (add_common_args, add_isprs_args, convert_isprs,
                     find_files, locate)

IMAGE_ARCHIVE = 'ISPRS_semantic_labeling_Vaihingen.zip'
ERODED_ARCHIVE = \
    'ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip'
FULL_ARCHIVE = 'ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip'
SPLITS = {
    'train': [f'area{i}' for i in (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28,
                                   30, 32, 34, 37)],
    'val': [f'area{i}' for i in (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27,
                                 29, 31, 33, 35, 38)],
}


def convert_vaihingen(src: str, out_dir: str, clip_size: int = 512,
                      stride: int = 256, full_labels: bool = False,
                      splits: Optional[Dict[str, Sequence[str]]] = None,
                      unknown_colour: str = 'error',
                      tmp_dir: Optional[str] = None,
                      nproc: int = 1) -> Dict[str, int]:
    """Convert; returns the number of crops per split."""
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        img_root = locate(src, IMAGE_ARCHIVE, tmp)
        # the image archive also holds labels under the same names: only top/
        if osp.isdir(osp.join(img_root, 'top')):
            img_root = osp.join(img_root, 'top')
        lab_root = locate(src, FULL_ARCHIVE if full_labels else
                          ERODED_ARCHIVE, tmp)
        images = find_files([img_root], r'top_mosaic_09cm_(area\d+)\.tif')
        labels = find_files(
            [lab_root], r'top_mosaic_09cm_(area\d+)' +
            ('' if full_labels else '_noBoundary') + r'\.tif')
        return convert_isprs(images, labels, splits or SPLITS, out_dir,
                             clip_size, stride, unknown_colour, nproc,
                             'vaihingen')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='folder with the Vaihingen archives')
    add_common_args(parser, 'data/vaihingen')
    add_isprs_args(parser)
    parser.add_argument('--full-labels', action='store_true',
                        help='use the non-eroded ground truth')
    args = parser.parse_args(argv)
    counts = convert_vaihingen(
        args.src, args.out_dir, args.clip_size, args.stride,
        args.full_labels, unknown_colour=args.unknown_colour,
        tmp_dir=args.tmp_dir, nproc=args.nproc)
    print('crops written:', counts)


if __name__ == '__main__':
    main()
