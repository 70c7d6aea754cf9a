"""tools/infer_scene.py on broken inputs: earlier outputs survive, outputs
of two scenes never collide, NaN pixels are nodata, and a checkpoint that
does not fit the model is refused."""
import os

import numpy as np
import pytest
import rasterio
import torch
from rel_utils import (band_files, last_line, save_tiny_checkpoint, snapshot,
                      tiny_seg_config, write_tif)

from s5_mm.testing import load_tool

ARGS = ['--tile-size', '32', '--stride', '24', '--batch-size', '2',
        '--no-progress']


def run(seg, scenes, out, *extra):
    cfg, ckpt = seg
    return load_tool('infer_scene.py').main(
        [cfg, ckpt, *scenes, '--out', str(out), *ARGS, *extra])


def read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_failed_run_keeps_earlier_output(seg, tmp_path):
    """Defect 1: a truncated band file used to leave an all-nodata map in
    place of the good one."""
    files = band_files(tmp_path / 'scene')
    out = tmp_path / 'out'
    run(seg, [','.join(files)], out, '--confidence', '--quicklook')
    before = snapshot(out)
    assert sorted(before) == ['B1_pred.png', 'B1_pred.tif',
                              'B1_pred_confidence.tif']
    good = read(out / 'B1_pred.tif')
    assert (good != 255).all()
    data = open(files[2], 'rb').read()
    with open(files[2], 'wb') as f:  # the tail of the file goes missing
        f.write(data[:len(data) // 2])
    with pytest.raises(OSError) as exc:
        run(seg, [','.join(files)], out, '--confidence', '--quicklook')
    assert snapshot(out) == before  # same bytes, no temporary file left
    assert os.path.abspath(files[2]) in last_line(exc.value)


def test_two_scenes_with_one_output_name_are_refused(seg, tmp_path):
    """Defect 2: both scenes wrote <out>/B1_pred.tif, the second silently
    replacing the first."""
    a = band_files(tmp_path / 'a', seed=1)
    b = band_files(tmp_path / 'b', seed=2)
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'keep.txt').write_text('an earlier file')
    before = snapshot(out)
    with pytest.raises(ValueError) as exc:
        run(seg, [','.join(a), ','.join(b)], out)
    line = last_line(exc.value)
    assert os.path.abspath(a[0]) in line and os.path.abspath(b[0]) in line
    assert snapshot(out) == before


def test_nonfinite_pixels_are_nodata(seg, tmp_path):
    """Defect 3 (inference): NaN / inf pixels became class 0 and changed
    their neighbours through the model. Now they are nodata: the result
    equals that of the same scene with those pixels tagged nodata."""
    rng = np.random.default_rng(3)
    img = rng.normal(70, 20, (3, 40, 56)).astype('float32')
    bad = np.zeros((40, 56), bool)
    bad[5:15, 10:30] = True
    bad[33, 50] = True
    nan_img = img.copy()
    nan_img[:, 5:15, 10:30] = np.nan
    nan_img[1, 33, 50] = np.inf
    tagged = img.copy()  # the same pixels of the same bands tagged nodata
    tagged[:, 5:15, 10:30] = -9999
    tagged[1, 33, 50] = -9999
    nan_scene = write_tif(tmp_path / 'nan' / 'scene.tif', nan_img)
    tagged_scene = write_tif(tmp_path / 'tagged' / 'scene.tif', tagged,
                             nodata=-9999)
    run(seg, [nan_scene], tmp_path / 'o1')
    run(seg, [tagged_scene], tmp_path / 'o2')
    got = read(tmp_path / 'o1' / 'scene_pred.tif')
    np.testing.assert_array_equal(got == 255, bad)
    np.testing.assert_array_equal(got, read(tmp_path / 'o2' /
                                            'scene_pred.tif'))


def test_checkpoint_that_does_not_fit_is_refused(seg, tmp_path):
    """Defect 4 (inference): an empty or mismatched checkpoint ran on random
    weights with exit code 0."""
    cfg, _ = seg
    files = band_files(tmp_path / 'scene')
    out = tmp_path / 'out'
    empty = tmp_path / 'empty.pth'  # what a converter mapping nothing wrote
    torch.save(dict(state_dict={}, meta=dict(format='s5_official')), empty)
    other = save_tiny_checkpoint(tiny_seg_config(num_classes=5),
                                 tmp_path / 'five_classes.pth')
    for ckpt, needle in ((empty, 'backbone.* (all'),
                         (other, 'decode_head.* (2 shape-mismatched)')):
        with pytest.raises(RuntimeError) as exc:
            run((cfg, str(ckpt)), [','.join(files)], out)
        line = last_line(exc.value)
        assert needle in line and str(ckpt) in line
        assert '--allow-partial' in line
        assert not out.exists() or not os.listdir(out)
    # explicitly allowed: runs
    run((cfg, str(other)), [','.join(files)], out, '--allow-partial')
    assert (out / 'B1_pred.tif').is_file()


def test_state_dict_without_meta_loads(seg, tmp_path):
    """Defect 4: a bare state dict failed with KeyError 'meta'."""
    cfg, ckpt = seg
    bare = save_tiny_checkpoint(tiny_seg_config(), tmp_path / 'bare.pth',
                                bare=True)
    files = band_files(tmp_path / 'scene')
    run((cfg, ckpt), [','.join(files)], tmp_path / 'o1')
    run((cfg, bare), [','.join(files)], tmp_path / 'o2')
    np.testing.assert_array_equal(read(tmp_path / 'o1' / 'B1_pred.tif'),
                                  read(tmp_path / 'o2' / 'B1_pred.tif'))


# ------------------------------------------------------ bad-input suite
def _bad_scene(kind, tmp_path):
    files = band_files(tmp_path / 'in', seed=5)
    target = files[1]
    if kind == 'missing':
        os.remove(target)
    elif kind == 'zero-byte':
        open(target, 'wb').close()
    elif kind == 'garbage':
        with open(target, 'wb') as f:
            f.write(os.urandom(3000))
    elif kind == 'wrong-band-count':
        files = files[:2]
        target = files[0]
    return files, target


@pytest.mark.parametrize(
    'kind', ['missing', 'zero-byte', 'garbage', 'wrong-band-count'])
def test_bad_scene_files(seg, tmp_path, kind):
    out = tmp_path / 'out'
    run(seg, [','.join(band_files(tmp_path / 'good'))], out)
    before = snapshot(out)
    files, target = _bad_scene(kind, tmp_path)
    # the bad scene's output name is that of the earlier good run
    with pytest.raises((OSError, ValueError)) as exc:
        run(seg, [','.join(files)], out)
    assert os.path.abspath(target) in last_line(exc.value)
    assert snapshot(out) == before


@pytest.mark.parametrize('kind', ['missing', 'zero-byte', 'truncated',
                                  'garbage'])
def test_bad_checkpoint_files(seg, tmp_path, kind):
    cfg, good = seg
    ckpt = tmp_path / 'bad.pth'
    if kind == 'zero-byte':
        ckpt.write_bytes(b'')
    elif kind == 'truncated':
        data = open(good, 'rb').read()
        ckpt.write_bytes(data[:len(data) // 2])
    elif kind == 'garbage':
        ckpt.write_bytes(os.urandom(2000))
    out = tmp_path / 'out'
    with pytest.raises((OSError, RuntimeError)) as exc:
        run((cfg, str(ckpt)), [','.join(band_files(tmp_path))], out)
    assert str(ckpt) in last_line(exc.value)
    assert not out.exists()


@pytest.mark.parametrize('option, value', [('--tile-size', '0'),
                                           ('--tile-size', '1.5'),
                                           ('--stride', '-4'),
                                           ('--batch-size', '0'),
                                           ('--stride', '64')])
def test_invalid_numeric_options(seg, tmp_path, capsys, option, value):
    cfg, ckpt = seg
    args = [cfg, ckpt, 'x.tif', '--out', str(tmp_path / 'o'),
            '--tile-size', '32', option, value]
    with pytest.raises(SystemExit) as exc:
        load_tool('infer_scene.py').parse_args(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in err and value in err


def test_unknown_cfg_option_key(seg, tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(KeyError) as exc:
        run(seg, [','.join(band_files(tmp_path))], out, '--cfg-options',
            'modle.test_cfg.mode=whole')
    line = last_line(exc.value)
    assert "'modle'" in line and "did you mean 'model'" in line
    assert not out.exists()
