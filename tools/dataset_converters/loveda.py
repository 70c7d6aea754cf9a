"""Convert the LoveDA release to MMSeg's layout.

    python tools/dataset_converters/loveda.py SRC -o data/loveDA \
        [--splits train,val,test] [--domains urban,rural] [--nproc 8]

SRC holds ``Train.zip``, ``Val.zip``, ``Test.zip`` or the folders they
extract to: ``<Split>/{Urban,Rural}/images_png/N.png`` and (train, val)
``masks_png/N.png`` (0 no-data, 1..7 background, building, road, water,
barren, forest, agriculture).

Output: ``img_dir/{train,val,test}/N.png``, ``ann_dir/{train,val}/N.png``
(files copied unchanged; ``S5LoveDADataset`` maps 0 to ignore), plus
``<split>_<domain>.txt`` base-name lists (usable as ``ann_file``) for
domain-wise training or evaluation. Two scenes with one file name fail.
"""
import argparse
import os
import os.path as osp
import shutil
import tempfile
from functools import partial
from typing import Dict, Optional, Sequence

from _common import add_common_args, locate, make_dirs, run_parallel

SPLIT_FOLDERS = {'train': 'Train', 'val': 'Val', 'test': 'Test'}
DOMAIN_FOLDERS = {'urban': 'Urban', 'rural': 'Rural'}


def copy_file(task, out_dir: str) -> int:
    src, kind, split = task
    shutil.copyfile(src, osp.join(out_dir, kind, split, osp.basename(src)))
    return 1


def collect(src: str, split: str, domains: Sequence[str], tmp: str):
    """Copy tasks of one split and its per-domain base names."""
    folder = SPLIT_FOLDERS[split]
    root = locate(src, folder + '.zip', tmp)
    # Train.zip holds Train/...; an extracted folder may be either level
    if osp.isdir(osp.join(root, folder)):
        root = osp.join(root, folder)
    tasks, names, seen = [], {}, {}
    for domain in domains:
        base = osp.join(root, DOMAIN_FOLDERS[domain])
        img_dir = osp.join(base, 'images_png')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(f'LoveDA {split}/{domain}: folder not '
                                    f'found: {img_dir}')
        files = sorted(f for f in os.listdir(img_dir) if f.endswith('.png'))
        if not files:
            raise FileNotFoundError(f'no .png images in {img_dir}')
        for f in files:
            if f in seen:
                raise ValueError(f'two LoveDA scenes named {f}: {seen[f]} '
                                 f'and {img_dir}')
            seen[f] = img_dir
            tasks.append((osp.join(img_dir, f), 'img_dir', split))
            if split != 'test':
                mask = osp.join(base, 'masks_png', f)
                if not osp.isfile(mask):
                    raise FileNotFoundError(f'LoveDA mask missing: {mask} '
                                            f'(image {osp.join(img_dir, f)})')
                tasks.append((mask, 'ann_dir', split))
        names[domain] = [osp.splitext(f)[0] for f in files]
    return tasks, names


def convert_loveda(src: str, out_dir: str,
                   splits: Sequence[str] = ('train', 'val', 'test'),
                   domains: Sequence[str] = ('urban', 'rural'),
                   tmp_dir: Optional[str] = None,
                   nproc: int = 1) -> Dict[str, int]:
    """Convert; returns the number of images per split."""
    for s in splits:
        if s not in SPLIT_FOLDERS:
            raise ValueError(f'unknown LoveDA split {s!r}; known: '
                             f'{list(SPLIT_FOLDERS)}')
    for d in domains:
        if d not in DOMAIN_FOLDERS:
            raise ValueError(f'unknown LoveDA domain {d!r}; known: '
                             f'{list(DOMAIN_FOLDERS)}')
    counts = {}
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        for split in splits:
            tasks, names = collect(src, split, domains, tmp)
            make_dirs(out_dir, [split], ('img_dir', ) if split == 'test'
                      else ('img_dir', 'ann_dir'))
            print(f'loveda {split}: {sum(map(len, names.values()))} images')
            run_parallel(partial(copy_file, out_dir=out_dir), tasks, nproc)
            for domain, stems in names.items():
                list_file = osp.join(out_dir, f'{split}_{domain}.txt')
                with open(list_file, 'w') as f:
                    f.writelines(s + '\n' for s in stems)
            counts[split] = sum(map(len, names.values()))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='folder with Train/Val/Test(.zip)')
    add_common_args(parser, 'data/loveDA')
    parser.add_argument('--splits', default='train,val,test')
    parser.add_argument('--domains', default='urban,rural')
    args = parser.parse_args(argv)
    counts = convert_loveda(args.src, args.out_dir, args.splits.split(','),
                            args.domains.split(','), args.tmp_dir,
                            args.nproc)
    print('images written:', counts)


if __name__ == '__main__':
    main()
