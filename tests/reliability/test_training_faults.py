"""tools/train.py (and test.py) on faults: NaN pixels, non-finite losses,
out-of-range labels, typos in --cfg-options, data roots from another
working directory, --resume with nothing or a truncated newest checkpoint."""
import json
import os
import shutil
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from rel_utils import (CONFIG, REPO, last_line, make_tiles, snapshot,
                       train_options)

from s5_mm.testing import load_tool


def train(work, data_root, iters, *extra, options=(), val=False):
    load_tool('train.py').main(
        [CONFIG, '--work-dir', str(work), *extra, '--cfg-options'] +
        train_options(data_root, iters, val=val) + list(options))


def logged_losses(work):
    logs = sorted(Path(work).rglob('vis_data/scalars.json'))
    rows = [json.loads(x) for p in logs for x in p.read_text().splitlines()]
    return [r['loss'] for r in rows if 'loss' in r]


def run_logs(work):
    """The text of the log files of every run in ``work``."""
    return ''.join(p.read_text() for p in sorted(Path(work).glob('*/*.log')))


def weights_finite(ckpt):
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    return all(torch.isfinite(v).all() for v in state['state_dict'].values()
               if v.is_floating_point())


def copy_work(src, dst):
    shutil.copytree(src, dst)
    # last_checkpoint holds an absolute path into the source dir
    (dst / 'last_checkpoint').write_text(str(dst / 'iter_2.pth'))
    return dst


def test_nan_pixels_are_masked_in_training(tmp_path):
    """Defect 3 (training): NaN / inf pixels of float tiles without a nodata
    tag went into the model: loss NaN from the first iteration, a NaN
    checkpoint saved, exit 0. Now they are nodata (masked, labels ignored)."""
    data = make_tiles(tmp_path / 'nan_tiles', n_train=2, n_val=1,
                      nan_block=True)
    work = tmp_path / 'work'
    train(work, data, 2)
    losses = logged_losses(work)
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert weights_finite(work / 'iter_2.pth')


def test_nonfinite_pixels_are_ignored_by_loaders(tmp_path):
    """Defect 3 (loaders, metric): the pixels are invalid and their labels
    ignore_index, so neither the loss nor IoUMetric counts them."""
    from s5_mm.datasets.transforms.geo_loading import (LoadGeoAnnotations,
                                                       LoadGeoImageFromFile)
    data = make_tiles(tmp_path / 't', n_train=1, n_val=0, nan_block=True)
    res = LoadGeoImageFromFile()(dict(
        img_path=str(data / 'img_dir/train/t0.tif'),
        seg_map_path=str(data / 'ann_dir/train/t0.tif')))
    res = LoadGeoAnnotations(label_offset=-1)(res)
    bad = np.zeros((32, 32), bool)
    bad[:8, :8] = True
    bad[31, 31] = True  # +inf in one band
    np.testing.assert_array_equal(~res['valid_mask'], bad)
    assert np.isfinite(res['img']).all()
    assert (res['img'][:8, :8] == 0).all() and res['img'][31, 31, 2] == 0
    assert (res['gt_seg_map'][bad] == 255).all()
    assert (res['gt_seg_map'][~bad] < 7).all()


def test_nonfinite_loss_stops_before_saving(trained, tmp_path):
    """Defect 3: a NaN loss in a supervised config (no S4PStatsHook) trained
    on and saved NaN checkpoints; now training stops at that iteration
    before the checkpoint hook, the earlier checkpoints untouched."""
    work = copy_work(trained, tmp_path / 'work')
    before = snapshot(work)
    with pytest.raises(FloatingPointError) as exc:
        train(work, _data_root(trained), 4, '--resume', options=[
            'model.decode_head.loss_decode.loss_weight=nan'])
    line = last_line(exc.value)
    assert 'iteration 3' in line and 'loss' in line
    assert str(work / 'iter_2.pth') in line
    after = snapshot(work)
    for name, digest in before.items():  # the run's log and config change
        if name.endswith('.pth') or name == 'last_checkpoint':
            assert after[name] == digest, name
    assert not list(work.glob('iter_3*')) and not list(work.glob('.*'))
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')


def _data_root(work):
    """The data root a work dir was trained on (from its dumped config)."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(next(Path(work).glob('*.py'))))
    return cfg.train_dataloader.dataset.dataset.data_root


def test_out_of_range_labels_name_the_file(tmp_path):
    """Defect 5: a label beyond the 7 classes crashed training with
    'IndexError: Target 8 is out of bounds' naming no file (and test.py
    dropped it from the score); now it fails naming the tile and the value,
    and out_of_range='ignore' maps such labels to ignore."""
    data = make_tiles(tmp_path / 'bad_labels', n_train=2, n_val=1,
                      label_value=9)
    work = tmp_path / 'work'
    with pytest.raises(ValueError) as exc:
        train(work, data, 1)
    line = last_line(exc.value)
    assert str(data / 'ann_dir' / 'train') in line
    assert '[8]' in line and 'values in the file' in line
    assert "out_of_range='ignore'" in line
    assert not list(work.glob('*.pth'))
    train(work, data, 1, options=[
        'train_dataloader.dataset.dataset.pipeline.1.out_of_range=ignore'])
    assert weights_finite(work / 'iter_1.pth')
    assert (work / 'iter_1.pth').is_file()


def test_test_tool_names_out_of_range_label_file(trained, tmp_path):
    data = make_tiles(tmp_path / 'bad_val', n_train=1, n_val=1,
                      label_value=9)
    with pytest.raises(ValueError) as exc:
        load_tool('test.py').main(
            [CONFIG, str(trained / 'iter_2.pth'), '--work-dir',
             str(tmp_path / 'test'), '--cfg-options'] +
            train_options(data, 2))
    assert str(data / 'ann_dir' / 'val' / 't0.tif') in last_line(exc.value)


def test_truncated_newest_checkpoint_is_skipped(trained, tmp_path):
    """--resume with a truncated newest checkpoint failed with a zip error;
    now it warns and continues from the previous complete one."""
    work = copy_work(trained, tmp_path / 'work')
    newest = work / 'iter_2.pth'
    data = newest.read_bytes()
    newest.write_bytes(data[:len(data) // 3])
    train(work, _data_root(trained), 3, '--resume')
    text = run_logs(work)
    assert f'the newest checkpoint {newest}' in text
    assert f'resuming from {work / "iter_1.pth"}' in text
    ckpt = torch.load(work / 'iter_3.pth', map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['iter'] == 3
    state = next(iter(ckpt['optimizer']['state'].values()))
    assert int(state['step']) == 3  # 1 (resumed) + 2 more steps
    assert weights_finite(newest)  # rewritten complete at iteration 2


def test_resume_without_checkpoint_says_so(tiles, tmp_path):
    """--resume in a work dir without checkpoints logged 'Auto resumed from
    the latest checkpoint None' and started from scratch; now it says so
    plainly (in the run's log)."""
    work = tmp_path / 'empty_work'
    work.mkdir()
    train(work, tiles, 1, '--resume')
    text = run_logs(work)
    assert (f'--resume: no checkpoint to resume from in {work}' in text)
    assert 'training starts from iteration 0' in text
    assert 'Auto resumed from the latest checkpoint None' not in text
    assert (work / 'iter_1.pth').is_file()


def _args(*argv):
    return load_tool('train.py').parse_args(list(argv))


def test_unknown_top_level_cfg_option_is_rejected(tiles, tmp_path):
    """``trian_cfg.max_iters=2`` was silently ignored (a full-length run)."""
    args = _args(CONFIG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                 'trian_cfg.max_iters=2',
                 f'train_dataloader.dataset.dataset.data_root={tiles}')
    with pytest.raises(KeyError) as exc:
        load_tool('train.py').build_train_cfg(args)
    line = last_line(exc.value)
    assert 'trian_cfg.max_iters' in line and "did you mean 'train_cfg'" in line
    assert CONFIG in line
    assert not (tmp_path / 'w').exists()


def test_explicit_resume_and_load_from_files_are_checked(trained, tmp_path):
    missing = tmp_path / 'nope.pth'
    trunc = tmp_path / 'trunc.pth'
    data = (trained / 'iter_1.pth').read_bytes()
    trunc.write_bytes(data[:1000])
    root = _data_root(trained)
    for argv, path in (
            (['--resume', str(missing)], missing),
            (['--resume', str(trunc)], trunc),
            (['--cfg-options', f'load_from={trunc}'], trunc)):
        args = _args(CONFIG, '--work-dir', str(tmp_path / 'w'), *argv)
        if args.cfg_options is None:
            args.cfg_options = {}
        args.cfg_options.update({
            'train_dataloader.dataset.dataset.data_root': root,
            'val_dataloader.dataset.data_root': root})
        with pytest.raises((OSError, RuntimeError)) as exc:
            load_tool('train.py').build_train_cfg(args)
        assert str(path) in last_line(exc.value)


def test_data_root_from_another_working_directory(tmp_path, monkeypatch):
    """A relative data_root resolves under the working directory, else
    under the repository root of the config (the shipped configs' base);
    if neither has it the error names both folders searched."""
    train_tool = load_tool('train.py')
    project = tmp_path / 'project'
    (project / 'configs').mkdir(parents=True)
    cfg = project / 'configs' / 'lc.py'
    cfg.write_text(f"_base_ = ['{CONFIG}']\n"
                   "train_dataloader = dict(dataset=dict(dataset=dict("
                   "data_root='data/lc')))\n"
                   "val_dataloader = dict(dataset=dict("
                   "data_root='data/lc'))\n")
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = Namespace(config=str(cfg), launcher='none', cfg_options=None,
                     work_dir=str(tmp_path / 'w'), amp=False, resume=None)
    with pytest.raises(FileNotFoundError) as exc:
        train_tool.build_train_cfg(args)
    line = last_line(exc.value)
    assert str(elsewhere / 'data' / 'lc') in line
    assert str(project / 'data' / 'lc') in line
    make_tiles(project / 'data' / 'lc', n_train=1, n_val=1)
    built = train_tool.build_train_cfg(args)
    assert built.train_dataloader.dataset.dataset.data_root == str(
        project / 'data' / 'lc')
    assert os.getcwd() == str(elsewhere)


def test_repo_configs_resolve_from_elsewhere(tmp_path, monkeypatch):
    """The shipped demo config from another folder: its data root is
    looked up under the repository root, and the error says so."""
    monkeypatch.chdir(tmp_path)
    args = Namespace(config=CONFIG, launcher='none', cfg_options=None,
                     work_dir=str(tmp_path / 'w'), amp=False, resume=None)
    if (REPO / 'data' / 'landcover_nc').is_dir():
        built = load_tool('train.py').build_train_cfg(args)
        assert built.train_dataloader.dataset.dataset.data_root == str(
            REPO / 'data' / 'landcover_nc')
        return
    with pytest.raises(FileNotFoundError) as exc:
        load_tool('train.py').build_train_cfg(args)
    assert str(REPO / 'data' / 'landcover_nc') in last_line(exc.value)
