"""Streamed pool lists, per-rank chunks, atomic chunk files and the merge.

A pool is a folder (scanned recursively, sorted) or a list file (one path
per line, extra columns ignored, '#' comments; the format
``UnlabeledImageDataset`` reads). It is streamed, never held whole: entry
``i`` belongs to chunk ``i // chunk_size`` and chunk ``c`` to rank
``c % world_size``. Chunk ids depend only on the list and the chunk size, so
a re-run resumes with any number of ranks, and batches (formed within a
chunk) are the same whatever the world size.

Each finished chunk is one ``.npz`` written to a temporary name and renamed
(``os.replace``, atomic on POSIX): a killed run leaves whole chunk files or
none. A chunk file holds the chunk's global indices and paths, so a re-run
skips it only if it matches the current list. :func:`merge_chunks` checks
that every entry is scored exactly once, streams scores into a text file and
features into a float16 ``.npy`` memory map.
"""
from __future__ import annotations

import glob
import io
import json
import os
import os.path as osp
from typing import Iterator, Optional, Tuple

import numpy as np

from s5_mm.datasets.unlabeled import IMG_SUFFIXES, parse_list_line

STATUS_OK, STATUS_UNREADABLE, STATUS_EMPTY = 0, 1, 2
STATUS_NAMES = {STATUS_OK: 'ok', STATUS_UNREADABLE: 'unreadable',
                STATUS_EMPTY: 'no valid pixels'}


class PoolSource:
    """A folder or list file of images, iterated lazily.

    Args:
        source: folder or list file.
        root: folder that relative list paths resolve against (default: the
            list file's folder).
        suffixes: kept when scanning a folder (case-insensitive).
        list_suffix: appended to list entries that have no file suffix
            (MMSeg's base-name split lists, e.g. '.tif').
    """

    def __init__(self, source: str, root: Optional[str] = None,
                 suffixes=IMG_SUFFIXES, list_suffix: str = ''):
        self.source = str(source)
        if not osp.exists(self.source):
            raise FileNotFoundError(f'pool not found: {self.source}')
        self.is_dir = osp.isdir(self.source)
        self.root = str(root) if root is not None else (
            self.source if self.is_dir else osp.dirname(
                osp.abspath(self.source)))
        self.suffixes = tuple(s.lower() for s in suffixes)
        self.list_suffix = list_suffix or ''

    def __iter__(self) -> Iterator[Tuple[int, str, str]]:
        """``(index, path as listed, resolved path)``."""
        if self.is_dir:
            it = self._walk()
        else:
            it = self._lines()
        for i, listed in enumerate(it):
            yield i, listed, listed if osp.isabs(listed) else osp.join(
                self.root, listed)

    def _walk(self):
        for top, dirs, files in os.walk(self.source, followlinks=True):
            dirs.sort()
            rel = osp.relpath(top, self.source)
            for f in sorted(files):
                if f.lower().endswith(self.suffixes):
                    yield f if rel == '.' else osp.join(rel, f)

    def _lines(self):
        with open(self.source, encoding='utf-8') as f:
            for n, raw in enumerate(f, 1):
                line = raw.strip()
                if line and not line.startswith('#'):
                    p = parse_list_line(line, f'{self.source}:{n}')[0]
                    if self.list_suffix and not osp.splitext(p)[1]:
                        p += self.list_suffix
                    yield p

    def count(self) -> int:
        return sum(1 for _ in self)

    def describe(self) -> str:
        return f"{'folder' if self.is_dir else 'list'} {self.source}"


def rank_chunks(source: PoolSource, chunk_size: int, rank: int = 0,
                world_size: int = 1):
    """Yield ``(chunk_id, entries)`` of this rank's chunks, streaming."""
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    cur, cid = [], None
    for i, listed, path in source:
        c = i // chunk_size
        if c % world_size != rank:
            continue
        if cid is not None and c != cid:
            yield cid, cur
            cur = []
        cid = c
        cur.append((i, listed, path))
    if cur:
        yield cid, cur


def num_chunks(n: int, chunk_size: int) -> int:
    return (n + chunk_size - 1) // chunk_size


class ChunkStore:
    """Chunk result files under ``folder`` (``chunk_0000042.npz``)."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def path(self, cid: int) -> str:
        return osp.join(self.folder, f'chunk_{cid:07d}.npz')

    def clean_temp(self, cids) -> None:
        """Remove temporary files a killed run left for these chunks."""
        for c in cids:
            for t in glob.glob(self.path(c) + '.tmp*'):
                os.remove(t)

    def write(self, cid: int, **arrays) -> str:
        dst = self.path(cid)
        tmp = f'{dst}.tmp{os.getpid()}'
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with open(tmp, 'wb') as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
        return dst

    def read(self, cid: int) -> Optional[dict]:
        p = self.path(cid)
        if not osp.isfile(p):
            return None
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def matches(self, cid: int, entries) -> bool:
        """A finished chunk for exactly these entries exists."""
        try:
            d = self.read(cid)
        except (OSError, ValueError):
            return False  # unreadable: scored again
        if d is None or len(d['index']) != len(entries):
            return False
        return bool(np.array_equal(d['index'], [e[0] for e in entries])
                    and list(d['path']) == [e[1] for e in entries])


class MergeError(RuntimeError):
    pass


def merge_chunks(source: PoolSource, store: ChunkStore, chunk_size: int,
                 out_dir: str, feat_dim: Optional[int] = None) -> dict:
    """Check and merge all chunks of ``source``.

    Writes ``scores.tsv`` (``index path status entropy valid_fraction``),
    ``features.npy`` (float16 (N, D) memory map; NaN rows for images not
    scored) and ``unreadable.tsv`` (``path reason``). Returns the counts
    per status (``ok``, ``unreadable``, ``no valid pixels``) and the files
    written (``*_file``). Raises :class:`MergeError` naming missing or
    inconsistent chunks.
    """
    os.makedirs(out_dir, exist_ok=True)
    n = source.count()
    chunks = num_chunks(n, chunk_size)
    missing = [c for c in range(chunks) if not osp.isfile(store.path(c))]
    if missing:
        raise MergeError(f'{len(missing)} of {chunks} chunks not scored '
                         f'under {store.folder}, e.g. {missing[:5]}')
    if feat_dim is None:
        feat_dim = next((int(d['feature'].shape[1]) for d in (
            store.read(c) for c in range(chunks)) if d['feature'].ndim == 2
            and d['feature'].shape[1]), 0)
    feats = np.lib.format.open_memmap(
        osp.join(out_dir, 'features.npy.tmp'), mode='w+', dtype=np.float16,
        shape=(n, feat_dim))
    counts = {v: 0 for v in STATUS_NAMES.values()}
    scores_tmp = osp.join(out_dir, 'scores.tsv.tmp')
    bad_tmp = osp.join(out_dir, 'unreadable.tsv.tmp')
    with open(scores_tmp, 'w', encoding='utf-8') as fs, \
            open(bad_tmp, 'w', encoding='utf-8') as fb:
        fs.write('# index\tpath\tstatus\tentropy\tvalid_fraction\n')
        fb.write('# path\treason\n')
        it = iter(source)
        for c in range(chunks):
            d = store.read(c)
            lo, hi = c * chunk_size, min(n, (c + 1) * chunk_size)
            want = [next(it) for _ in range(lo, hi)]
            if not np.array_equal(d['index'], np.arange(lo, hi)):
                raise MergeError(f'chunk {c} ({store.path(c)}) holds indices '
                                 f'{d["index"][:3]}... not {lo}..{hi - 1}: '
                                 'each image must be scored exactly once')
            if list(d['path']) != [w[1] for w in want]:
                raise MergeError(f'chunk {c} ({store.path(c)}) was scored '
                                 'for another pool list; use a new --out')
            f = d['feature']
            if f.ndim == 2 and f.shape[1] == feat_dim:
                feats[lo:hi] = f
            else:
                feats[lo:hi] = np.nan
            for k in range(hi - lo):
                st = int(d['status'][k])
                counts[STATUS_NAMES[st]] += 1
                fs.write(f'{lo + k}\t{d["path"][k]}\t{STATUS_NAMES[st]}\t'
                         f'{float(d["entropy"][k])!r}\t'
                         f'{float(d["valid_fraction"][k])!r}\n')
                if st != STATUS_OK:
                    fb.write(f'{want[k][2]}\t{STATUS_NAMES[st]}: '
                             f'{d["error"][k]}\n')
    feats.flush()
    del feats
    paths = dict(scores_file=osp.join(out_dir, 'scores.tsv'),
                 features_file=osp.join(out_dir, 'features.npy'),
                 unreadable_file=osp.join(out_dir, 'unreadable.tsv'))
    os.replace(scores_tmp, paths['scores_file'])
    os.replace(bad_tmp, paths['unreadable_file'])
    os.replace(osp.join(out_dir, 'features.npy.tmp'),
               paths['features_file'])
    info = dict(total=n, chunks=chunks, feat_dim=feat_dim, **counts,
                **paths)
    with open(osp.join(out_dir, 'merge.json'), 'w') as f:
        json.dump(info, f, indent=2)
    return info


def read_scores(path: str, n: int) -> dict:
    """``entropy`` (float64, NaN unless ok) and ``status`` (int8) arrays of
    a merged ``scores.tsv`` of ``n`` entries, streamed (paths not kept)."""
    names = {v: k for k, v in STATUS_NAMES.items()}
    ent = np.full(n, np.nan, dtype=np.float64)
    st = np.full(n, -1, dtype=np.int8)
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.startswith('#'):
                continue
            parts = line.rstrip('\n').split('\t')
            i, s = int(parts[0]), names[parts[2]]
            st[i] = s
            if s == STATUS_OK:
                ent[i] = float(parts[3])
    if (st < 0).any():
        raise MergeError(f'{path} lacks {int((st < 0).sum())} of {n} entries')
    return dict(entropy=ent, status=st)


def iter_scored_paths(path: str) -> Iterator[Tuple[int, str]]:
    with open(path, encoding='utf-8') as f:
        for line in f:
            if not line.startswith('#'):
                parts = line.rstrip('\n').split('\t')
                yield int(parts[0]), parts[1]
