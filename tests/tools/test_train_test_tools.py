"""tools/train.py, tools/test.py and tools/dist_train.sh on a tiny config:
train, save, test from the checkpoint, resume, and 2-process gloo training."""
import json
import os
import subprocess
import sys

import pytest
import torch

CONFIG = 'configs/demo/upernet_vit-tiny_landcover.py'


@pytest.fixture(scope='module')
def landcover_tiles(tmp_path_factory, shared_data):
    from s5_mm.datasets.landcover_prepare import prepare_landcover
    out = tmp_path_factory.mktemp('landcover')
    prepare_landcover(out, src=shared_data / 'landcover_nc', fetch=False)
    return out


def tiny_options(data_root, iters):
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=4',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.save_best=None',
        'default_hooks.logger.interval=1',
    ]


def test_train_save_test_resume(landcover_tiles, tmp_path, repo_root):
    import train as train_tool
    import test as test_tool
    work = tmp_path / 'work'
    os.chdir(repo_root)
    train_tool.main([CONFIG, '--work-dir', str(work), '--cfg-options'] +
                    tiny_options(landcover_tiles, 2))
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    saved = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert saved['meta']['iter'] == 2

    metrics = test_tool.main([
        CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'test'),
        '--show-dir', str(tmp_path / 'vis'), '--cfg-options'
    ] + tiny_options(landcover_tiles, 2))
    assert 0.0 <= metrics['mIoU'] <= 100.0
    pictures = list((tmp_path / 'vis').rglob('*.png'))
    assert pictures, 'no prediction pictures written by --show-dir'

    # flip TTA and per-tile prediction maps
    out_dir = tmp_path / 'pred'
    tta_metrics = test_tool.main([
        CONFIG, str(ckpt), '--tta', '--out', str(out_dir), '--work-dir',
        str(tmp_path / 'tta'), '--cfg-options'
    ] + tiny_options(landcover_tiles, 2))
    assert 0.0 <= tta_metrics['mIoU'] <= 100.0
    n_val = len(list((landcover_tiles / 'img_dir' / 'val').glob('*.tif')))
    assert len(list(out_dir.glob('*.png'))) == n_val

    # --resume without a path picks the latest checkpoint of the work dir
    train_tool.main([CONFIG, '--work-dir', str(work), '--resume',
                     '--cfg-options'] + tiny_options(landcover_tiles, 4))
    resumed = torch.load(work / 'iter_4.pth', map_location='cpu',
                         weights_only=False)
    assert resumed['meta']['iter'] == 4
    # the optimizer continued: AdamW step count went on from 2 to 4
    state = next(iter(resumed['optimizer']['state'].values()))
    assert int(state['step']) == 4


def test_dist_train_two_cpu_processes(landcover_tiles, tmp_path, repo_root):
    work = tmp_path / 'dist'
    env = dict(os.environ, PYTHON=sys.executable, PORT='29617')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir',
         str(work), '--cfg-options'] + tiny_options(landcover_tiles, 2),
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / 'iter_2.pth').is_file()
    logs = list(work.rglob('vis_data/scalars.json'))
    assert logs
    lines = [json.loads(x) for x in logs[0].read_text().splitlines()]
    assert any('loss' in x for x in lines)
    log = next(work.rglob('*.log')).read_text()
    assert 'Distributed training: True' in log
    assert "dist_cfg=dict(backend='gloo')" in log
