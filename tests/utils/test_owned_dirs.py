"""No tool deletes a folder it did not create (issue 24, item 2)."""
import json

import pytest

from s5_mm.testing import load_tool
from s5_mm.utils.owned_dirs import (MARKER, NotOwnedError, check_replaceable,
                                    replace_parts)


def _user_dataset(root):
    """A user's own MMSeg-layout dataset: one image, one label."""
    (root / 'img_dir').mkdir(parents=True)
    (root / 'ann_dir').mkdir()
    (root / 'img_dir' / 'my_tile.tif').write_bytes(b'user image')
    (root / 'ann_dir' / 'my_label.tif').write_bytes(b'user label')
    return root


def test_replace_parts_refuses_a_foreign_folder(tmp_path):
    root = _user_dataset(tmp_path / 'mine')
    with pytest.raises(NotOwnedError, match='img_dir'):
        replace_parts(root, 'some_tool', ('img_dir', 'ann_dir'))
    assert (root / 'img_dir' / 'my_tile.tif').read_bytes() == b'user image'
    assert not (root / MARKER).exists()


def test_replace_parts_own_empty_or_overwrite(tmp_path):
    empty = tmp_path / 'empty'
    replace_parts(empty, 'tool_a')  # nothing there: allowed, then marked
    (empty / 'out.txt').write_text('a')
    replace_parts(empty, 'tool_a')  # its own folder: replaced
    assert not (empty / 'out.txt').exists()
    assert json.loads((empty / MARKER).read_text()) == {'tool': 'tool_a'}
    (empty / 'out.txt').write_text('a')
    with pytest.raises(NotOwnedError):  # another tool's folder
        check_replaceable(empty, 'tool_b')
    replace_parts(empty, 'tool_b', overwrite=True)
    assert not (empty / 'out.txt').exists()


def test_prepare_landcover_keeps_a_users_dataset(tmp_path, shared_data,
                                                 capsys):
    prepare = load_tool('dataset_converters/prepare_landcover.py')
    root = _user_dataset(tmp_path / 'data')
    argv = ['--src', str(shared_data / 'landcover_nc'), '--out', str(root),
            '--no-fetch']
    with pytest.raises(SystemExit) as exc:
        prepare.main(argv)
    assert str(root / 'img_dir') in str(exc.value.code)
    assert '--overwrite' in str(exc.value.code)
    assert (root / 'img_dir' / 'my_tile.tif').read_bytes() == b'user image'
    assert (root / 'ann_dir' / 'my_label.tif').read_bytes() == b'user label'
    assert not (root / 'meta.json').exists()

    prepare.main(argv + ['--overwrite'])
    assert not (root / 'img_dir' / 'my_tile.tif').exists()
    meta = json.loads((root / 'meta.json').read_text())
    n_tiles = len(list((root / 'img_dir').glob('*/*.tif')))
    assert n_tiles == meta['counts']['train'] + meta['counts']['val'] > 0
    # its own folder, other settings: re-cut without --overwrite
    prepare.main(argv[:-1] + ['--tile-size', '64'])
    meta64 = json.loads((root / 'meta.json').read_text())
    assert meta64['settings']['tile_size'] == 64
    assert sum(meta64['counts'].values()) < n_tiles


def test_prepare_landcover_reuses_a_folder_without_marker(tmp_path,
                                                          shared_data):
    """A folder made by the version before the marker (meta.json only) is
    still the tool's own."""
    prepare = load_tool('dataset_converters/prepare_landcover.py')
    root = tmp_path / 'old'
    prepare.prepare_landcover(root, src=shared_data / 'landcover_nc',
                              fetch=False, tile_size=64)
    (root / MARKER).unlink()
    meta = prepare.prepare_landcover(root, src=shared_data / 'landcover_nc',
                                     fetch=False, tile_size=96)
    assert meta['settings']['tile_size'] == 96


def test_pipeline_stage_folder_of_a_user_is_refused(tmp_path):
    pipeline = load_tool('run_s5_pipeline.py')
    work = tmp_path / 'work'
    (work / 'scoring').mkdir(parents=True)
    (work / 'scoring' / 'notes.txt').write_text('mine')
    args = pipeline.parse_args(['--work-dir', str(work)])
    p = pipeline.Pipeline(args)
    with pytest.raises(NotOwnedError, match='scoring'):
        p.run_stage(1, 'scoring', lambda out: dict(line='x'))
    assert (work / 'scoring' / 'notes.txt').read_text() == 'mine'
