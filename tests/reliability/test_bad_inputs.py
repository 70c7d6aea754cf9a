"""The bad-input suite across tools: broken, empty and mismatched files,
invalid numeric options, a python without the project environment. Every
error names the file (full path, last line) or the option, and no existing
output changes."""
import os
import subprocess
import sys

import numpy as np
import pytest
from rasterio.transform import from_origin
from rel_utils import REPO, last_line, make_tiles, snapshot, write_tif

from s5_mm.testing import load_tool


def _corrupt(path, kind):
    """Make the file at ``path`` missing / empty / truncated / garbage."""
    if kind == 'missing':
        os.remove(path)
    elif kind == 'zero-byte':
        open(path, 'wb').close()
    elif kind == 'truncated':
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
    elif kind == 'garbage':
        open(path, 'wb').write(os.urandom(4000))


def _scene(folder, size=(64, 96), seed=0):
    rng = np.random.default_rng(seed)
    return write_tif(os.path.join(folder, 'scene.tif'),
                     rng.normal(70, 20, (3, *size)).astype('float32'))


KINDS = ['missing', 'zero-byte', 'truncated', 'garbage']


# ------------------------------------------------------------ band_stats
def test_band_stats_ignore_nonfinite(tmp_path):
    """Defect 3 (band_stats): NaN pixels made the means NaN."""
    rng = np.random.default_rng(0)
    img = rng.normal(70, 20, (2, 50, 60)).astype('float32')
    img[0, :10] = np.nan
    img[1, 5, 5] = np.inf
    img[1, 6, 6] = -np.inf
    path = write_tif(tmp_path / 'nan.tif', img)
    mean, std, count = load_tool('band_stats.py').main([path])
    for b in range(2):
        v = img[b][np.isfinite(img[b])].astype(np.float64)
        assert count[b] == v.size
        assert mean[b] == pytest.approx(v.mean(), rel=1e-9)
        assert std[b] == pytest.approx(v.std(), rel=1e-9)
    assert count == [50 * 60 - 600, 50 * 60 - 2]


@pytest.mark.parametrize('kind', KINDS)
def test_band_stats_bad_files(tmp_path, kind):
    path = _scene(tmp_path)
    _corrupt(path, kind)
    with pytest.raises((OSError, ValueError)) as exc:
        load_tool('band_stats.py').main([path, '--block', '16'])
    assert path in last_line(exc.value)


def test_band_stats_empty_glob_and_all_nodata(tmp_path, capsys):
    band_stats = load_tool('band_stats.py')
    with pytest.raises(FileNotFoundError) as exc:
        band_stats.main([str(tmp_path / 'none' / '*.tif')])
    assert str(tmp_path / 'none') in last_line(exc.value)
    path = write_tif(tmp_path / 'allnan.tif',
                     np.full((1, 4, 4), np.nan, 'float32'))
    with pytest.raises(ValueError) as exc:
        band_stats.main([path])
    assert path in last_line(exc.value)
    with pytest.raises(SystemExit):
        band_stats.parse_args([path, '--block', '0'])
    assert '--block' in capsys.readouterr().err


# ------------------------------------------------------------ tile_scene
def _label(path, shape=(64, 96), transform=None, crs='EPSG:32119'):
    lab = np.ones(shape, 'uint8')
    return write_tif(path, lab, transform=transform, crs=crs)


@pytest.mark.parametrize('case', ['size', 'transform', 'crs'])
def test_tile_scene_label_must_share_the_grid(tmp_path, case):
    """Defect 5 (tiling): a label raster of another size or grid gave
    mostly-empty or unmatched label tiles with exit 0."""
    scene = _scene(tmp_path)
    t = from_origin(1000, 2000, 1, 1)
    label = {
        'size': lambda p: _label(p, shape=(64, 80)),
        'transform': lambda p: _label(p, transform=from_origin(1030, 2000, 1,
                                                               1)),
        'crs': lambda p: _label(p, crs='EPSG:4326', transform=t),
    }[case](tmp_path / 'label.tif')
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'earlier.tif').write_bytes(b'an earlier tile')
    before = snapshot(out)
    with pytest.raises(ValueError) as exc:
        load_tool('tile_scene.py').main([scene, '--out', str(out),
                                         '--tile-size', '32', '--label',
                                         label])
    line = last_line(exc.value)
    assert {'size': 'size mismatch', 'transform': 'geotransform mismatch',
            'crs': 'CRS mismatch'}[case] in line
    assert scene in line and label in line
    assert snapshot(out) == before


def test_tile_scene_accepts_a_datum_only_crs_difference(shared_data,
                                                        tmp_path):
    d = shared_data / 'landcover_nc'
    tiles = load_tool('tile_scene.py').main(
        [str(d / 'lsat7_2000_10.tif'), '--out', str(tmp_path), '--tile-size',
         '128', '--label', str(d / 'strata.tif')])
    assert len(tiles) == len(os.listdir(tmp_path / 'ann')) > 0


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('which', ['scene', 'label'])
def test_tile_scene_bad_files_change_nothing(tmp_path, kind, which):
    scene = _scene(tmp_path)
    label = _label(tmp_path / 'label.tif')
    out = tmp_path / 'out'
    args = [scene, '--out', str(out), '--tile-size', '32', '--label', label]
    load_tool('tile_scene.py').main(args)
    before = snapshot(out)
    assert len(before) == 12  # 6 image + 6 label tiles
    target = scene if which == 'scene' else label
    _corrupt(target, kind)
    with pytest.raises((OSError, ValueError)) as exc:
        load_tool('tile_scene.py').main(args)
    assert target in last_line(exc.value)
    assert snapshot(out) == before


@pytest.mark.parametrize('option, value', [('--tile-size', '0'),
                                           ('--tile-size', '0.5'),
                                           ('--stride', '-1'),
                                           ('--bands', '0')])
def test_tile_scene_invalid_numbers(capsys, option, value):
    args = ['s.tif', '--out', 'o', '--tile-size', '32', option, value]
    with pytest.raises(SystemExit) as exc:
        load_tool('tile_scene.py').parse_args(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in err and value in err


# ----------------------------------------------- datasets and split lists
def test_landcover_dataset_empty_or_missing_folder(tmp_path):
    from mmengine.registry import init_default_scope

    from s5_mm.datasets.landcover import LandcoverNCDataset
    init_default_scope('mmseg')
    (tmp_path / 'empty' / 'img_dir' / 'train').mkdir(parents=True)
    for root, err in (('empty', ValueError), ('absent', FileNotFoundError)):
        with pytest.raises(err) as exc:
            LandcoverNCDataset(data_root=str(tmp_path / root),
                               data_prefix=dict(img_path='img_dir/train',
                                                seg_map_path='ann_dir/train'),
                               pipeline=[])
        assert str(tmp_path / root / 'img_dir' / 'train') in last_line(
            exc.value)


@pytest.mark.parametrize('kind', ['missing', 'empty', 'bad-line'])
def test_split_lists(tmp_path, kind):
    from mmengine.registry import init_default_scope

    from s5_mm.datasets.openearthmap import OpenEarthMapDataset
    init_default_scope('mmseg')
    split = tmp_path / 'train.txt'
    if kind == 'empty':
        split.write_text('# no samples\n\n')
    elif kind == 'bad-line':
        split.write_text('a.tif a_mask.tif extra\n')
    with pytest.raises((FileNotFoundError, ValueError)) as exc:
        OpenEarthMapDataset(data_root=str(tmp_path), ann_file=str(split),
                            pipeline=[])
    assert str(split) in last_line(exc.value)


def test_label_and_image_of_other_sizes(tmp_path):
    from s5_mm.datasets.transforms.geo_loading import (LoadGeoAnnotations,
                                                       LoadGeoImageFromFile)
    root = make_tiles(tmp_path / 't', n_train=1, n_val=0)
    small = write_tif(tmp_path / 'small.tif', np.ones((16, 16), 'uint8'))
    res = LoadGeoImageFromFile(expected_bands=6)(dict(
        img_path=str(root / 'img_dir/train/t0.tif'), seg_map_path=small))
    with pytest.raises(ValueError) as exc:
        LoadGeoAnnotations()(res)
    assert small in last_line(exc.value)
    with pytest.raises(ValueError) as exc:
        LoadGeoImageFromFile(expected_bands=3)(dict(
            img_path=str(root / 'img_dir/train/t0.tif')))
    assert str(root / 'img_dir/train/t0.tif') in last_line(exc.value)


# ----------------------------------------------------- run_s4p_demo args
@pytest.mark.parametrize('args, needle', [
    (['--pixel-fraction', '1.5'], '--pixel-fraction'),
    (['--pixel-fraction', '0'], '--pixel-fraction'),
    (['--iters', '0'], '--iters'),
    (['--labelled-every', '-2'], '--labelled-every'),
    (['--jobs', '0'], '--jobs'),
    (['--seeds', '0', '0'], '--seeds'),
    (['--cfg-options', 'train_cfg.max_iters'], 'key=value'),
    (['--cfg-options', 'trian_cfg.max_iters=2'], "did you mean 'train_cfg'"),
    (['--s4p-config', 'nope.py'], 'nope.py'),
])
def test_run_s4p_demo_rejects_bad_arguments(capsys, args, needle):
    with pytest.raises(SystemExit) as exc:
        load_tool('run_s4p_demo.py').parse_args(args)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err.strip().splitlines()[-1]


def test_prepare_landcover_rejects_bad_numbers(capsys):
    prepare = load_tool('dataset_converters/prepare_landcover.py')
    for args in (['--tile-size', '0'], ['--val-every', '1']):
        with pytest.raises(SystemExit) as exc:
            prepare.main(args)
        assert exc.value.code == 2
        assert args[0] in capsys.readouterr().err


# ------------------------------------------- without the environment
TOOLS = ['train.py', 'test.py', 'infer_scene.py', 'tile_scene.py',
         'band_stats.py', 'run_s4p_demo.py', 'model_converters/mae2s5mm.py',
         'model_converters/s5official2s5mm.py',
         'dataset_converters/prepare_landcover.py']


def test_tools_without_the_environment_say_which_python(tmp_path):
    """A python without the project's packages (``-S``: no site-packages,
    as a system python3) stops with a message naming .venv/bin/python."""
    for tool in TOOLS:
        proc = subprocess.run(
            [sys.executable, '-S', str(REPO / 'tools' / tool), '--help'],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={'PATH': os.environ.get('PATH', ''), 'HOME': str(tmp_path)})
        assert proc.returncode == 1, (tool, proc.stderr[-2000:])
        last = proc.stderr.strip().splitlines()[-1]
        assert '.venv/bin/python' in last and tool in last, (tool, last)
