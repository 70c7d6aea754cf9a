"""Convert the ISPRS Potsdam release to MMSeg's layout, in crops.

    python tools/dataset_converters/potsdam.py SRC -o data/potsdam \
        [--clip-size 512] [--stride 256] [--image-archive 2_Ortho_RGB.zip] \
        [--label-archive 5_Labels_all_noBoundary.zip] [--nproc 8]

SRC holds the release archives (or the folders they extract to, named like
the archive without '.zip'): ``2_Ortho_RGB.zip`` with
``top_potsdam_<i>_<j>_RGB.tif`` (or ``3_Ortho_IRRG.zip``, ``_IRRG.tif``) and
``5_Labels_all_noBoundary.zip`` with ``top_potsdam_<i>_<j>_label_noBoundary
.tif`` (eroded colour labels, as MMSeg; or ``5_Labels_all.zip``).

Output: ``{img_dir,ann_dir}/{train,val}/<i>_<j>_<x0>_<y0>_<x1>_<y1>.png``,
labels as MMSeg's ids (0 undefined/boundary, 1..6 impervious surface,
building, low vegetation, tree, car, clutter; ``S5PotsdamDataset`` gives
S5's 5 classes, clutter ignored). Crops of ``--clip-size`` every
``--stride`` px, the last one moved back to the border. Split: the ISPRS
benchmark's 24 training tiles (train) and 14 test tiles (val).
"""
import argparse
import tempfile
from typing import Dict, Optional, Sequence

from _common import (add_common_args, add_isprs_args, convert_isprs,
                     find_files, locate)

SPLITS = {
    'train': ['2_10', '2_11', '2_12', '3_10', '3_11', '3_12', '4_10', '4_11',
              '4_12', '5_10', '5_11', '5_12', '6_7', '6_8', '6_9', '6_10',
              '6_11', '6_12', '7_7', '7_8', '7_9', '7_10', '7_11', '7_12'],
    'val': ['2_13', '2_14', '3_13', '3_14', '4_13', '4_14', '4_15', '5_13',
            '5_14', '5_15', '6_13', '6_14', '6_15', '7_13'],
}


def convert_potsdam(src: str, out_dir: str, clip_size: int = 512,
                    stride: int = 256,
                    image_archive: str = '2_Ortho_RGB.zip',
                    label_archive: str = '5_Labels_all_noBoundary.zip',
                    splits: Optional[Dict[str, Sequence[str]]] = None,
                    unknown_colour: str = 'error',
                    tmp_dir: Optional[str] = None,
                    nproc: int = 1) -> Dict[str, int]:
    """Convert; returns the number of crops per split."""
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        images = find_files([locate(src, image_archive, tmp)],
                            r'top_potsdam_(\d+_\d+)_(?:RGB|IRRG)\.tif')
        labels = find_files([locate(src, label_archive, tmp)],
                            r'top_potsdam_(\d+_\d+)_label(?:_noBoundary)?'
                            r'\.tif')
        return convert_isprs(images, labels, splits or SPLITS, out_dir,
                             clip_size, stride, unknown_colour, nproc,
                             'potsdam')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='folder with the Potsdam archives')
    add_common_args(parser, 'data/potsdam')
    add_isprs_args(parser)
    parser.add_argument('--image-archive', default='2_Ortho_RGB.zip')
    parser.add_argument('--label-archive',
                        default='5_Labels_all_noBoundary.zip')
    args = parser.parse_args(argv)
    counts = convert_potsdam(
        args.src, args.out_dir, args.clip_size, args.stride,
        args.image_archive, args.label_archive,
        unknown_colour=args.unknown_colour, tmp_dir=args.tmp_dir,
        nproc=args.nproc)
    print('crops written:', counts)


if __name__ == '__main__':
    main()
