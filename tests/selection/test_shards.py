"""Streamed pool lists, rank chunks, atomic chunk files, merge checks."""
import numpy as np
import pytest

from s5_mm.selection.shards import (ChunkStore, MergeError, PoolSource,
                                    merge_chunks, num_chunks, rank_chunks,
                                    read_scores)


def _list(tmp_path, n):
    p = tmp_path / 'pool.txt'
    lines = ['# a comment', '']
    lines += [f'img_{i:03d}.tif 0.5 3' if i % 2 else f'img_{i:03d}.tif'
              for i in range(n)]
    p.write_text('\n'.join(lines) + '\n')
    return p


def test_list_source_skips_comments_and_extra_columns(tmp_path):
    src = PoolSource(str(_list(tmp_path, 5)))
    got = list(src)
    assert [g[1] for g in got] == [f'img_{i:03d}.tif' for i in range(5)]
    assert got[2][2] == str(tmp_path / 'img_002.tif')
    assert src.count() == 5
    root = PoolSource(str(tmp_path / 'pool.txt'), root='/data')
    assert next(iter(root))[2] == '/data/img_000.tif'


def test_folder_source_sorted_recursive(tmp_path):
    for rel in ('b/2.png', 'a/1.tif', 'a/0.TIF', 'c.txt', '3.jpg'):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b'x')
    got = [g[1] for g in PoolSource(str(tmp_path))]
    assert got == ['3.jpg', 'a/0.TIF', 'a/1.tif', 'b/2.png']
    with pytest.raises(FileNotFoundError, match='pool not found'):
        PoolSource(str(tmp_path / 'missing'))


@pytest.mark.parametrize('world', [1, 2, 3])
def test_rank_chunks_cover_every_entry_once(tmp_path, world):
    src = PoolSource(str(_list(tmp_path, 23)))
    seen = []
    for rank in range(world):
        for cid, entries in rank_chunks(src, 4, rank, world):
            assert cid % world == rank
            assert [e[0] for e in entries] == list(
                range(cid * 4, min(23, cid * 4 + 4)))
            seen += [e[0] for e in entries]
    assert sorted(seen) == list(range(23))
    assert num_chunks(23, 4) == 6


def _write_chunk(store, src, cid, cs, n, dim=3, bad=()):
    entries = list(src)[cid * cs:min(n, (cid + 1) * cs)]
    k = len(entries)
    st = np.zeros(k, np.int8)
    ent = np.arange(k, dtype=np.float64) + cid
    for b in bad:
        st[b] = 1
        ent[b] = np.nan
    store.write(cid, index=np.array([e[0] for e in entries]),
                path=np.array([e[1] for e in entries]), status=st,
                entropy=ent, valid_fraction=np.ones(k, np.float32),
                feature=np.full((k, dim), cid, np.float16),
                error=np.array(['broken' if i in bad else ''
                                for i in range(k)]))
    return entries


def test_store_matches_and_merge(tmp_path):
    src = PoolSource(str(_list(tmp_path, 10)))
    store = ChunkStore(str(tmp_path / 'chunks'))
    for c in range(3):
        entries = _write_chunk(store, src, c, 4, 10,
                               bad=(1, ) if c == 1 else ())
        assert store.matches(c, entries)
        assert not store.matches(c, entries[:-1])
    # a temporary file left by a killed writer is cleaned and ignored
    (tmp_path / 'chunks' / 'chunk_0000001.npz.tmp123').write_bytes(b'x')
    store.clean_temp([1])
    assert not list((tmp_path / 'chunks').glob('*.tmp*'))
    info = merge_chunks(src, store, 4, str(tmp_path / 'out'))
    assert (info['total'], info['ok'], info['unreadable']) == (10, 9, 1)
    assert info['unreadable_file'] == str(tmp_path / 'out/unreadable.tsv')
    bad = (tmp_path / 'out' / 'unreadable.tsv').read_text().splitlines()
    assert bad[1] == f'{tmp_path}/img_005.tif\tunreadable: broken'
    f = np.load(info['features_file'], mmap_mode='r')
    assert f.shape == (10, 3) and f.dtype == np.float16
    assert f[9, 0] == 2
    sc = read_scores(info['scores_file'], 10)
    assert np.isnan(sc['entropy'][5]) and sc['status'][5] == 1
    assert sc['entropy'][4] == 1.0 and sc['entropy'][9] == 3.0


def test_merge_refuses_missing_or_foreign_chunks(tmp_path):
    src = PoolSource(str(_list(tmp_path, 10)))
    store = ChunkStore(str(tmp_path / 'chunks'))
    _write_chunk(store, src, 0, 4, 10)
    _write_chunk(store, src, 2, 4, 10)
    with pytest.raises(MergeError, match=r'1 of 3 chunks not scored.*\[1\]'):
        merge_chunks(src, store, 4, str(tmp_path / 'out'))
    _write_chunk(store, src, 1, 4, 10)
    other = PoolSource(str(_list(tmp_path / 'x', 10)) if (
        tmp_path / 'x').mkdir() is None else None)
    (tmp_path / 'x' / 'pool.txt').write_text(
        '\n'.join(f'other_{i}.tif' for i in range(10)) + '\n')
    with pytest.raises(MergeError, match='another pool list'):
        merge_chunks(other, store, 4, str(tmp_path / 'out'))
