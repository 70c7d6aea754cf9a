"""Helpers shared by the dataset converters in this folder.

The converters import it as ``_common`` (Python puts a script's folder first
on ``sys.path``). Every converter reads a release archive (zip) or the
folder it extracts to, writes MMSeg's layout ``img_dir/<split>``,
``ann_dir/<split>``, and works over images in parallel with a progress bar.
"""
import argparse
import os
import os.path as osp
import re
import zipfile
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np


def add_common_args(parser: argparse.ArgumentParser, default_out: str):
    parser.add_argument('-o', '--out-dir', default=default_out,
                        help=f'output root (default {default_out})')
    parser.add_argument('--tmp-dir', default=None,
                        help='where archives are extracted (default: the '
                        "system's temporary folder)")
    parser.add_argument('--nproc', type=int, default=max(1, os.cpu_count()
                                                          or 1),
                        help='worker processes (default: all CPUs)')


def extract_zip(path: str, dst: str) -> str:
    """Extract ``path`` into ``dst`` (once), naming the archive on error."""
    marker = osp.join(dst, '.extracted')
    if osp.isfile(marker):
        return dst
    try:
        with zipfile.ZipFile(path) as zf:
            zf.extractall(dst)
    except zipfile.BadZipFile as e:
        raise ValueError(f'not a valid zip archive: {path} ({e})') from e
    open(marker, 'w').close()
    return dst


def locate(src: str, archive: str, tmp_dir: str) -> str:
    """Folder holding the content of release archive ``archive``.

    ``src`` may be the archive itself, a folder with the archive, or a folder
    with the archive already extracted under its name without '.zip'.
    """
    stem = archive[:-4] if archive.lower().endswith('.zip') else archive
    if osp.isfile(src) and osp.basename(src) == archive:
        return extract_zip(src, osp.join(tmp_dir, stem))
    for cand in (osp.join(src, archive), osp.join(src, stem)):
        if osp.isfile(cand) and zipfile.is_zipfile(cand):
            return extract_zip(cand, osp.join(tmp_dir, stem))
        if osp.isdir(cand):
            return cand
    raise FileNotFoundError(
        f'neither {osp.join(src, archive)} nor the extracted folder '
        f'{osp.join(src, stem)} exists')


def expand_zips(folder: str, tmp_dir: str,
                skip: Callable[[str], bool] = lambda p: False) -> List[str]:
    """``folder`` plus the extraction of every zip below it (``skip``
    filters archives by path)."""
    roots = [folder]
    for dirpath, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            path = osp.join(dirpath, f)
            if f.lower().endswith('.zip') and not skip(path):
                rel = osp.relpath(path, folder)[:-4].replace(os.sep, '__')
                roots.append(extract_zip(path, osp.join(tmp_dir, rel)))
    return roots


def find_files(roots: Sequence[str], pattern: str) -> Dict[str, str]:
    """``{key: path}`` for files below ``roots`` whose name fully matches
    ``pattern``; the key is its first group (or the whole name). An earlier
    root wins (a folder extracted in place beside its zip); two files with
    one key in one root are an error."""
    regex = re.compile(pattern)
    found: Dict[str, str] = {}
    for root in roots:
        here: Dict[str, str] = {}
        for dirpath, _, files in sorted(os.walk(root)):
            for f in sorted(files):
                m = regex.fullmatch(f)
                if not m:
                    continue
                key = m.group(1) if m.groups() else f
                path = osp.join(dirpath, f)
                if key in here:
                    raise ValueError(f'two files for {key!r}: {here[key]} '
                                     f'and {path}')
                here[key] = path
        for key, path in here.items():
            found.setdefault(key, path)
    return found


def read_image(path: str, flag: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """cv2 read (BGR for colour), falling back to rasterio for GeoTIFFs
    OpenCV cannot decode; the error names the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    img = cv2.imread(path, flag)
    if img is None and path.lower().endswith(('.tif', '.tiff')):
        try:
            import rasterio
            with rasterio.open(path) as src:
                img = np.moveaxis(src.read(), 0, -1)
            img = img[..., 0] if img.shape[-1] == 1 else img[..., 2::-1]
        except Exception:  # reported below with the file name
            img = None
    if img is None:
        raise ValueError(f'cannot read image {path}')
    return img


def read_rgb(path: str) -> np.ndarray:
    """An (H, W, 3) RGB array (colour-coded masks)."""
    img = read_image(path)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f'{path}: expected a colour image, got shape '
                         f'{img.shape}')
    return np.ascontiguousarray(img[..., 2::-1])  # BGR(A) -> RGB


def colour_to_ids(rgb: np.ndarray, colours: Sequence[Sequence[int]],
                  path: str, unknown: Optional[int] = None,
                  first_id: int = 0) -> np.ndarray:
    """Map an RGB colour code to uint8 ids: ``colours[i]`` -> ``first_id + i``.

    Colours outside the code raise, naming the file and the colours (with
    pixel counts), unless ``unknown`` gives the id to write for them.
    """
    code = (rgb[..., 0].astype(np.int32) << 16) | (
        rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    keys = np.array([(r << 16) | (g << 8) | b for r, g, b in colours])
    order = np.argsort(keys)
    pos = np.searchsorted(keys[order], code).clip(0, len(keys) - 1)
    hit = keys[order][pos] == code
    out = (order[pos] + first_id).astype(np.uint8)
    if not hit.all():
        if unknown is None:
            vals, counts = np.unique(code[~hit], return_counts=True)
            top = np.argsort(-counts)[:5]
            desc = ', '.join(f'{_rgb(vals[i])} x{counts[i]}' for i in top)
            raise ValueError(
                f'{path}: {int((~hit).sum())} pixels have colours outside '
                f'the colour code, e.g. {desc} (use --unknown-colour ignore '
                'to write them as ignored)')
        out[~hit] = unknown
    return out


def _rgb(code: int) -> Tuple[int, int, int]:
    return (int(code) >> 16 & 255, int(code) >> 8 & 255, int(code) & 255)


def window_starts(size: int, patch: int, stride: int) -> List[int]:
    """Sliding-window starts covering ``[0, size)``; the last window is
    moved back to end at the border (as the iSAID devkit does)."""
    if stride < 1 or patch < 1:
        raise ValueError(f'patch {patch} and stride {stride} must be >= 1')
    if size <= patch:
        return [0]
    return sorted({min(x, size - patch) for x in range(0, size, stride)})


def pad_to(arr: np.ndarray, h: int, w: int, value: int) -> np.ndarray:
    """Pad bottom/right to at least (h, w)."""
    ph, pw = max(0, h - arr.shape[0]), max(0, w - arr.shape[1])
    if not ph and not pw:
        return arr
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (arr.ndim - 2)
    return np.pad(arr, pad, constant_values=value)


def windows(h: int, w: int, patch: int,
            stride: int) -> List[Tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) windows of an (h, w) image padded to ``patch``."""
    return [(x, y, x + patch, y + patch)
            for y in window_starts(max(h, patch), patch, stride)
            for x in window_starts(max(w, patch), patch, stride)]


def write_png(path: str, arr: np.ndarray) -> None:
    if not cv2.imwrite(path, arr):
        raise OSError(f'cannot write {path}')


def make_dirs(out_dir: str, splits: Sequence[str],
              kinds: Sequence[str] = ('img_dir', 'ann_dir')) -> None:
    for kind in kinds:
        for split in splits:
            os.makedirs(osp.join(out_dir, kind, split), exist_ok=True)


def run_parallel(func: Callable, tasks: Sequence, nproc: int) -> list:
    """``func`` over ``tasks`` with MMEngine's progress bar."""
    import mmengine
    if not tasks:
        return []
    if nproc > 1 and len(tasks) > 1:
        return mmengine.track_parallel_progress(func, list(tasks),
                                                min(nproc, len(tasks)))
    return mmengine.track_progress(func, list(tasks))


# ISPRS Vaihingen / Potsdam ---------------------------------------------------
# Label ids of MMSeg's converters (what its ISPRS datasets read): 0 undefined
# (black, the eroded boundary), 1..6 the ISPRS colour code below, in order.
ISPRS_COLOURS = ((0, 0, 0), (255, 255, 255), (0, 0, 255), (0, 255, 255),
                 (0, 255, 0), (255, 255, 0), (255, 0, 0))
ISPRS_CLASSES = ('undefined', 'impervious_surface', 'building',
                 'low_vegetation', 'tree', 'car', 'clutter')


def add_isprs_args(parser: argparse.ArgumentParser):
    parser.add_argument('--clip-size', type=int, default=512)
    parser.add_argument('--stride', type=int, default=256,
                        help='crop stride (default 256: half overlap)')
    parser.add_argument('--unknown-colour', choices=('error', 'ignore'),
                        default='error',
                        help='label colours outside the ISPRS code: fail, '
                        'or write them as 0 (undefined, ignored)')


def clip_isprs_tile(task, out_dir: str, clip: int, stride: int,
                    unknown: Optional[int]) -> int:
    """Crops of one tile: RGB colour labels -> ids; returns the crop count."""
    split, prefix, img_path, label_path = task
    img = read_image(img_path, cv2.IMREAD_UNCHANGED)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'{img_path}: expected a 3-band 8-bit image, got '
                         f'{img.shape} {img.dtype} (use a 3-band archive)')
    h, w = img.shape[:2]
    rgb = read_rgb(label_path)
    if rgb.shape[:2] != (h, w):
        raise ValueError(f'{label_path} is {rgb.shape[:2]}, its image '
                         f'{img_path} is {(h, w)}')
    label = pad_to(colour_to_ids(rgb, ISPRS_COLOURS, label_path, unknown),
                   clip, clip, 0)
    img = pad_to(img, clip, clip, 0)
    wins = windows(h, w, clip, stride)
    for x0, y0, x1, y1 in wins:
        name = f'{prefix}_{x0}_{y0}_{x1}_{y1}.png'
        write_png(osp.join(out_dir, 'img_dir', split, name), img[y0:y1, x0:x1])
        write_png(osp.join(out_dir, 'ann_dir', split, name),
                  label[y0:y1, x0:x1])
    return len(wins)


def convert_isprs(images: Dict[str, str], labels: Dict[str, str],
                  splits: Dict[str, Sequence[str]], out_dir: str, clip: int,
                  stride: int, unknown_colour: str, nproc: int,
                  what: str) -> Dict[str, int]:
    """Crop the tiles of ``splits`` (tile id lists); tiles of no split are
    reported and left out; a split tile without image or label fails."""
    if stride < 1 or clip < 1:
        raise ValueError(f'clip size {clip} and stride {stride} must be >= 1')
    unknown = {'error': None, 'ignore': 0}[unknown_colour]
    wanted = {t for ids in splits.values() for t in ids}
    missing = [f'{what} {kind} for tile {t}' for t in sorted(wanted)
               for kind, files in (('image', images), ('label', labels))
               if t not in files]
    if missing:
        raise FileNotFoundError(f'{len(missing)} file(s) missing: '
                                f'{missing[:4]}')
    extra = sorted((set(images) | set(labels)) - wanted)
    if extra:
        print(f'{what}: tiles in no split, left out: {extra}')
    make_dirs(out_dir, list(splits))
    func = partial(clip_isprs_tile, out_dir=out_dir, clip=clip, stride=stride,
                   unknown=unknown)
    counts = {}
    for split, ids in splits.items():
        tasks = [(split, t, images[t], labels[t]) for t in ids]
        print(f'{what} {split}: {len(tasks)} tiles')
        counts[split] = sum(run_parallel(func, tasks, nproc))
    return counts
