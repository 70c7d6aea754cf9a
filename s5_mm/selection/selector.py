"""The selection engine shared by ``tools/select_data.py`` and
``EntropySelectionHook``: checks, distributed resumable scoring, merge,
diversity selection on rank 0, selected list and summary.

Output folder::

    OUT/pool/manifest.json       what the scores were computed with
    OUT/pool/chunks/*.npz        per-chunk results (resume skips them)
    OUT/pool/scores.tsv          index path status entropy valid_fraction
    OUT/pool/features.npy        float16 (N, D) memory map
    OUT/pool/unreadable.tsv      images skipped, by path, with the reason
    OUT/labeled/...              the same for the labelled set
    OUT/selected.txt             path entropy cluster (UnlabeledImageDataset)
    OUT/selection.npz            cluster, similarity, selected mask (pool)
    OUT/summary.json, .png       per-cluster quota/filled, histograms
    OUT/pseudo_labels/...        argmax maps (--save-pseudo-labels)
"""
from __future__ import annotations

import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .diversity import KMEANS_BACKENDS, select_diverse
from .scoring import SCORE_MODES, SegScorer, write_label_map
from .shards import (STATUS_EMPTY, STATUS_OK, STATUS_UNREADABLE, ChunkStore,
                     PoolSource, merge_chunks, num_chunks, rank_chunks,
                     read_scores)
from .summary import build_summary, write_summary


class SelectionError(ValueError):
    """Bad input found before scoring (or a selection that cannot run)."""


@dataclass
class SelectionOptions:
    """Everything that decides a selection (see tools/select_data.py)."""
    budget: int
    clusters: int = 64
    bg_index: Optional[int] = 0  # None: entropy over all classes
    feature_level: int = -1
    input_size: Optional[Sequence[int]] = None
    mode: str = 'resize'
    batch_size: int = 32
    chunk_size: int = 1024
    num_workers: int = 2
    autocast: Optional[str] = 'auto'  # auto: bf16 on CUDA, off on CPU
    save_pseudo_labels: bool = False
    ood_floor: Union[None, float, str] = None  # number or 'pP' percentile
    redistribute: bool = False
    kmeans_backend: str = 'faiss'  # 10x faster than sklearn (RESULTS.md)
    seed: int = 0
    absolute_paths: bool = False
    pool_root: Optional[str] = None
    labeled_root: Optional[str] = None
    list_suffix: str = ''  # for list entries without one (MMSeg lists)
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if int(self.budget) < 1:
            raise SelectionError(f'budget must be >= 1, got {self.budget}')
        if int(self.clusters) < 1:
            raise SelectionError(f'clusters must be >= 1, got '
                                 f'{self.clusters}')
        if self.mode not in SCORE_MODES:
            raise SelectionError(f'mode must be one of {SCORE_MODES}')
        if self.kmeans_backend not in KMEANS_BACKENDS:
            raise SelectionError(
                f'kmeans_backend must be one of {KMEANS_BACKENDS}')
        if self.batch_size < 1 or self.chunk_size < 1:
            raise SelectionError('batch_size and chunk_size must be >= 1')
        parse_ood_floor(self.ood_floor)

    def score_key(self) -> dict:
        """The options that change per-image scores (in the manifest)."""
        return dict(bg_index=self.bg_index, feature_level=self.feature_level,
                    input_size=list(self.input_size)
                    if self.input_size is not None else None,
                    mode=self.mode, chunk_size=self.chunk_size,
                    batch_size=self.batch_size)


def parse_ood_floor(v):
    """None, a float, or ``('percentile', P)`` from 'pP' / 'auto'."""
    if v is None or v == '' or v == 'none':
        return None
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip().lower()
    if s == 'auto':
        return ('percentile', 1.0)
    if s.startswith('p'):
        try:
            return ('percentile', float(s[1:]))
        except ValueError:
            pass
    try:
        return float(s)
    except ValueError:
        raise SelectionError(
            f"ood_floor must be a number, 'pP' (P-th percentile of the "
            f"labelled images' similarity) or 'auto' (p1), got {v!r}")


def image_loader_cfg(cfg) -> dict:
    """The image-loading transform of a config: ``selection.load`` if set,
    else the first ``Load*Image*`` step of the test (or val) pipeline."""
    sel = cfg.get('selection') or {}
    if sel.get('load'):
        return dict(sel['load'])
    pipes = []
    for key in ('test_dataloader', 'val_dataloader'):
        dl = cfg.get(key)
        if dl and dl.get('dataset') and dl['dataset'].get('pipeline'):
            pipes.append(dl['dataset']['pipeline'])
    for key in ('test_pipeline', 'val_pipeline'):
        if cfg.get(key):
            pipes.append(cfg[key])
    for pipe in pipes:
        for t in pipe:
            typ = str(t.get('type', ''))
            if 'Load' in typ and 'Image' in typ:
                return dict(t)
    raise SelectionError('the config has no image-loading transform in its '
                         'test/val pipeline; set selection.load=dict(...)')


def model_input_size(cfg) -> Optional[tuple]:
    """(h, w) the model is fed: ``selection.input_size``, the data
    preprocessor's ``size`` or the config's ``crop_size``."""
    sel = cfg.get('selection') or {}
    if sel.get('input_size'):
        return tuple(sel['input_size'])
    model = cfg.get('model', {})
    for m in (model, model.get('segmentor') or {}):
        size = (m.get('data_preprocessor') or {}).get('size')
        if size:
            return tuple(size)
    if cfg.get('crop_size'):
        return tuple(cfg['crop_size'])
    return None


class ImageReader:
    """Loads one pool entry with the config's loading transform."""

    def __init__(self, load_cfg: dict):
        from mmseg.registry import TRANSFORMS
        import s5_mm  # noqa: F401  (registers the geo loader)
        self.load_cfg = dict(load_cfg)
        self.transform = TRANSFORMS.build(dict(load_cfg))

    def __call__(self, path: str) -> dict:
        if not osp.isfile(path):
            raise FileNotFoundError(f'no such file: {path}')
        if osp.getsize(path) == 0:
            raise OSError(f'zero-byte file: {path}')
        r = self.transform(dict(img_path=path))
        if r is None or r.get('img') is None:
            raise OSError(f'could not decode {path}')
        img = np.asarray(r['img'])
        if img.ndim == 2:
            img = img[..., None]
        valid = r.get('valid_mask')
        valid = np.ones(img.shape[:2], bool) if valid is None else \
            np.asarray(valid, bool)
        geo = None
        if r.get('geo_crs') and r.get('geo_transform') is not None:
            geo = dict(crs=r['geo_crs'], transform=tuple(r['geo_transform']))
        return dict(img=torch.from_numpy(np.ascontiguousarray(
            img.transpose(2, 0, 1))).float(),
            valid=torch.from_numpy(valid), geo=geo)


class _ChunkData(torch.utils.data.Dataset):

    def __init__(self, entries, reader: ImageReader):
        self.entries, self.reader = entries, reader

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, k):
        i, listed, path = self.entries[k]
        item = dict(index=i, listed=listed, path=path)
        try:
            item.update(self.reader(path))
        except Exception as e:  # unreadable: listed, not fatal
            item['error'] = f'{type(e).__name__}: {e}'.replace('\n', ' ')
        return item


def _collate(batch):
    return batch


def _dist():
    from mmengine.dist import get_dist_info
    return get_dist_info()


def _barrier():
    from mmengine.dist import barrier
    barrier()


def _broadcast(obj):
    from mmengine.dist import broadcast_object_list, get_world_size
    if get_world_size() == 1:
        return obj
    lst = [obj]
    broadcast_object_list(lst, src=0)
    return lst[0]


class DataSelector:
    """Runs a selection with a built model.

    Args:
        model: trained segmentor (any device).
        load_cfg: the image-loading transform (see :func:`image_loader_cfg`).
        options: :class:`SelectionOptions`.
        out_dir: output folder (a re-run with the same one resumes).
        model_id: identifies the weights in the manifest (a changed model
            must not resume from old scores).
    """

    def __init__(self, model, load_cfg: dict, options: SelectionOptions,
                 out_dir: str, model_id: str = ''):
        self.model = model
        self.opts = options
        self.out_dir = str(out_dir)
        self.model_id = model_id
        self.load_cfg = dict(load_cfg)
        self.reader = ImageReader(load_cfg)
        self.rank, self.world = _dist()
        dev = next(model.parameters()).device
        ac = options.autocast
        if ac == 'auto':
            ac = 'bf16' if dev.type == 'cuda' else None
        self.scorer = SegScorer(model, options.input_size, options.mode,
                                options.bg_index, options.feature_level,
                                ac)
        self.log = print if self.rank == 0 else (lambda *a, **k: None)

    # -- checks -----------------------------------------------------------
    def _first_readable(self, source: PoolSource) -> Optional[str]:
        for _, _, path in source:
            try:
                self.reader(path)
                return path
            except Exception:
                continue
        return None

    def preflight(self, pool: PoolSource, labeled: PoolSource) -> dict:
        """Clear errors before any scoring: no readable pool image, budget
        larger than the pool, fewer labelled images than clusters."""
        n_pool, n_lab = pool.count(), labeled.count()
        o = self.opts
        if n_pool == 0:
            raise SelectionError(f'pool {pool.describe()} lists no images')
        if o.budget > n_pool:
            raise SelectionError(
                f'budget {o.budget} is larger than the pool '
                f'({n_pool} images in {pool.describe()})')
        if n_lab < o.clusters:
            raise SelectionError(
                f'the labelled set {labeled.describe()} has {n_lab} images, '
                f'fewer than --clusters {o.clusters}')
        # stops at the first readable image: cheap unless all are bad
        if self._first_readable(pool) is None:
            raise SelectionError(f'no readable image in pool '
                                 f'{pool.describe()} ({n_pool} entries; '
                                 'see the loader errors by scoring one)')
        if self._first_readable(labeled) is None:
            raise SelectionError(f'no readable image in the labelled set '
                                 f'{labeled.describe()}')
        return dict(pool=n_pool, labeled=n_lab)

    # -- scoring ----------------------------------------------------------
    def _manifest(self, source: PoolSource, n: int, stage: str) -> dict:
        return dict(stage=stage, source=osp.abspath(source.source),
                    root=osp.abspath(source.root), entries=n,
                    model=self.model_id, load=self.load_cfg,
                    **self.opts.score_key(),
                    pseudo_labels=bool(self.opts.save_pseudo_labels
                                       and stage == 'pool'))

    def _check_manifest(self, stage_dir: str, manifest: dict) -> None:
        path = osp.join(stage_dir, 'manifest.json')
        if self.rank == 0:
            os.makedirs(stage_dir, exist_ok=True)
            if osp.isfile(path):
                with open(path) as f:
                    old = json.load(f)
                diff = {k for k in set(old) | set(manifest)
                        if old.get(k) != manifest.get(k)}
                err = None if not diff else (
                    f'{stage_dir} holds scores made with other settings '
                    f'({", ".join(sorted(diff))}); use a new --out or '
                    'delete it')
            else:
                with open(path + '.tmp', 'w') as f:
                    json.dump(manifest, f, indent=2)
                os.replace(path + '.tmp', path)
                err = None
        else:
            err = None
        err = _broadcast(err)
        if err:
            raise SelectionError(err)

    def score(self, source: PoolSource, stage: str, n: int,
              want_labels: bool = False) -> dict:
        """Score this rank's chunks of ``source`` into ``OUT/<stage>``."""
        o = self.opts
        stage_dir = osp.join(self.out_dir, stage)
        self._check_manifest(stage_dir, self._manifest(source, n, stage))
        store = ChunkStore(osp.join(stage_dir, 'chunks'))
        mine = [c for c in range(num_chunks(n, o.chunk_size))
                if c % self.world == self.rank]
        store.clean_temp(mine)
        total = sum(min(n, (c + 1) * o.chunk_size) - c * o.chunk_size
                    for c in mine)
        bar = None
        if o.progress and self.rank == 0:
            from tqdm import tqdm
            bar = tqdm(total=total, unit='img', dynamic_ncols=True,
                       desc=f'{stage} (rank 0 of {self.world})')
        done = skipped = 0
        t0 = time.perf_counter()
        for cid, entries in rank_chunks(source, o.chunk_size, self.rank,
                                        self.world):
            if store.matches(cid, entries):
                skipped += len(entries)
                if bar is not None:
                    bar.total -= len(entries)  # rate/ETA: new work only
                    bar.refresh()
                continue
            res = self._score_chunk(entries, want_labels, bar)
            store.write(cid, **res)
            done += len(entries)
        if bar is not None:
            bar.close()
        return dict(scored=done, resumed=skipped,
                    seconds=time.perf_counter() - t0)

    def _score_chunk(self, entries, want_labels, bar) -> dict:
        o = self.opts
        n = len(entries)
        status = np.full(n, STATUS_OK, np.int8)
        entropy = np.full(n, np.nan, np.float64)
        vfrac = np.zeros(n, np.float32)
        errors = [''] * n
        feats = None
        loader = torch.utils.data.DataLoader(
            _ChunkData(entries, self.reader), batch_size=o.batch_size,
            shuffle=False, num_workers=o.num_workers, collate_fn=_collate)
        k0 = 0
        for batch in loader:
            good = [j for j, b in enumerate(batch) if 'error' not in b]
            for j, b in enumerate(batch):
                if 'error' in b:
                    status[k0 + j] = STATUS_UNREADABLE
                    errors[k0 + j] = b['error']
            if good:
                out = self.scorer.score_images(
                    [batch[j]['img'] for j in good],
                    [batch[j]['valid'] for j in good],
                    want_labels=want_labels)
                if feats is None:
                    feats = np.full((n, out['feature'].shape[1]), np.nan,
                                    np.float16)
                for q, j in enumerate(good):
                    k = k0 + j
                    vfrac[k] = out['valid_fraction'][q]
                    if not np.isfinite(out['entropy'][q]):
                        status[k] = STATUS_EMPTY
                        errors[k] = 'no valid pixel (all nodata)'
                        continue
                    entropy[k] = out['entropy'][q]
                    feats[k] = out['feature'][q]
                    if want_labels:
                        self._write_label(batch[j], out['labels'][q])
            k0 += len(batch)
            if bar is not None:
                bar.update(len(batch))
        if feats is None:
            feats = np.zeros((n, 0), np.float16)
        return dict(index=np.array([e[0] for e in entries], np.int64),
                    path=np.array([e[1] for e in entries]),
                    status=status, entropy=entropy, valid_fraction=vfrac,
                    feature=feats, error=np.array(errors))

    def _write_label(self, item: dict, label: np.ndarray) -> None:
        rel = item['listed'].lstrip('/\\')
        stem = osp.splitext(rel)[0]
        ext = '.tif' if item.get('geo') else '.png'
        write_label_map(label, osp.join(self.out_dir, 'pseudo_labels',
                                        stem + ext), item.get('geo'))

    # -- whole run --------------------------------------------------------
    def run(self, pool: str, labeled: str) -> Optional[dict]:
        """Check, score (all ranks), merge and select (rank 0). Returns the
        summary on rank 0, None on the others."""
        o = self.opts
        pool_src = PoolSource(pool, o.pool_root, list_suffix=o.list_suffix)
        lab_src = PoolSource(labeled, o.labeled_root,
                             list_suffix=o.list_suffix)
        counts = None
        err = None
        if self.rank == 0:
            try:
                counts = self.preflight(pool_src, lab_src)
            except SelectionError as e:
                err = str(e)
        err, counts = _broadcast((err, counts))
        if err:
            raise SelectionError(err)
        t0 = time.perf_counter()
        lab_stats = self.score(lab_src, 'labeled', counts['labeled'])
        pool_stats = self.score(pool_src, 'pool', counts['pool'],
                                want_labels=o.save_pseudo_labels)
        _barrier()
        if self.rank != 0:
            return None
        score_s = time.perf_counter() - t0
        return self.select(pool_src, lab_src, counts,
                           extra=dict(score_seconds=score_s,
                                      world_size=self.world,
                                      rank0_scored=pool_stats['scored'],
                                      rank0_resumed=pool_stats['resumed'],
                                      labeled_rank0=lab_stats))

    def select(self, pool_src: PoolSource, lab_src: PoolSource,
               counts: dict, extra: Optional[dict] = None) -> dict:
        """Merge both stages and select (one process)."""
        o = self.opts
        cs = o.chunk_size
        lab = merge_chunks(lab_src, ChunkStore(
            osp.join(self.out_dir, 'labeled', 'chunks')), cs,
            osp.join(self.out_dir, 'labeled'))
        pool = merge_chunks(pool_src, ChunkStore(
            osp.join(self.out_dir, 'pool', 'chunks')), cs,
            osp.join(self.out_dir, 'pool'))
        if pool['ok'] == 0:
            raise SelectionError(f'no pool image could be scored; see '
                                 f'{pool["unreadable_file"]}')
        lab_scores = read_scores(lab['scores_file'], lab['total'])
        lab_feat = np.load(lab['features_file'], mmap_mode='r')
        lab_ok = np.flatnonzero(lab_scores['status'] == STATUS_OK)
        if len(lab_ok) < o.clusters:
            raise SelectionError(
                f'only {len(lab_ok)} labelled images could be scored, fewer '
                f'than --clusters {o.clusters}; see {lab["unreadable_file"]}')
        sc = read_scores(pool['scores_file'], pool['total'])
        feats = np.load(pool['features_file'], mmap_mode='r')
        res = select_diverse(
            np.asarray(lab_feat[lab_ok], np.float32), feats, sc['entropy'],
            o.budget, o.clusters, seed=o.seed, backend=o.kmeans_backend,
            ood_floor=parse_ood_floor(o.ood_floor),
            redistribute=o.redistribute)
        mask = np.zeros(pool['total'], bool)
        mask[res['selected']] = True
        self._write_selected(pool['scores_file'], pool_src, mask,
                             sc['entropy'], res['cluster'])
        np.savez(osp.join(self.out_dir, 'selection.npz'),
                 cluster=res['cluster'], similarity=res['similarity'],
                 selected=mask, centroids=res['centroids'],
                 entropy=sc['entropy'], status=sc['status'])
        summary = build_summary(res, sc['entropy'], sc['status'], o.budget,
                                extra=dict(
                                    options=_jsonable(asdict(o)),
                                    labeled=dict(total=lab['total'],
                                                 ok=int(len(lab_ok))),
                                    selected_list=osp.join(
                                        self.out_dir, 'selected.txt'),
                                    unreadable_list=pool['unreadable_file'],
                                    **(extra or {})))
        write_summary(summary, self.out_dir)
        if summary['shortfall']:
            self.log(f'selection: shortfall of {summary["shortfall"]} images '
                     f'(clusters with fewer candidates than their quota; '
                     f'see {self.out_dir}/summary.json)')
        self.log(f'selection: {summary["selected"]} of {pool["total"]} '
                 f'images -> {self.out_dir}/selected.txt '
                 f'({summary["unreadable"]} unreadable, listed in '
                 f'{pool["unreadable_file"]})')
        return summary

    def _write_selected(self, scores_tsv, src: PoolSource, mask, entropy,
                        cluster) -> None:
        from .shards import iter_scored_paths
        dst = osp.join(self.out_dir, 'selected.txt')
        with open(dst + '.tmp', 'w', encoding='utf-8') as f:
            f.write('# path entropy cluster\n')
            for i, listed in iter_scored_paths(scores_tsv):
                if not mask[i]:
                    continue
                p = listed
                if self.opts.absolute_paths and not osp.isabs(p):
                    p = osp.abspath(osp.join(src.root, p))
                # tab-separated only when the path has blanks (the
                # dataset's parser splits on tabs then)
                sep = '\t' if any(ch.isspace() for ch in p) else ' '
                f.write(f'{p}{sep}{float(entropy[i])!r}{sep}'
                        f'{int(cluster[i])}\n')
        os.replace(dst + '.tmp', dst)


def _jsonable(d):
    return json.loads(json.dumps(d, default=str))
