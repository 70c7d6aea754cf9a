"""tools/train.py, tools/test.py and tools/dist_train.sh on a tiny config:
train, save, test from the checkpoint, resume, and 2-process gloo training."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from s5_mm.testing import load_tool
from s5_mm.testing.checks import free_port, miou, top2

CONFIG = 'configs/demo/upernet_vit-tiny_landcover.py'


def tiny_options(data_root, iters):
    return [
        f'train_dataloader.dataset.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=4',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.save_best=None',
        'default_hooks.logger.interval=1',
    ]


def read_val_tiles(data_root):
    """Normalised val tiles and their labels, read with rasterio alone:
    nodata pixels of any band are 0 before normalisation and ignored (255)
    in the labels; labels 1..7 on disk are classes 0..6."""
    from mmengine.config import Config
    pre = Config.fromfile(CONFIG).model.data_preprocessor
    mean = np.array(pre.mean, np.float32)[:, None, None]
    std = np.array(pre.std, np.float32)[:, None, None]
    images, labels = [], []
    for img in sorted((data_root / 'img_dir' / 'val').glob('*.tif')):
        with rasterio.open(img) as src:
            bands = src.read(masked=True)
        with rasterio.open(data_root / 'ann_dir' / 'val' / img.name) as src:
            raw = src.read(1, masked=True)
        mask = np.ma.getmaskarray(bands)
        x = np.where(mask, 0, bands.data).astype(np.float32)
        images.append((x - mean) / std)
        y = raw.data.astype(np.int64) - 1
        ignore = np.ma.getmaskarray(raw) | (y < 0) | mask.any(0)
        labels.append(np.where(ignore, 255, y))
    return torch.from_numpy(np.stack(images)), np.stack(labels)


def predict_from_checkpoint(ckpt, images, flip_tta=False):
    """Class scores (N, C, H, W) of ``images`` from the checkpoint's weights,
    without the runner: the config's model, eval mode, the logits (with flip
    TTA: the log of the mean softmax of the plain and the flipped-back
    view); their argmax is the prediction."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import s5_mm  # noqa: F401
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(CONFIG).model)
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    model.load_state_dict(state['state_dict'])
    model.eval()
    h, w = images.shape[-2:]
    metas = [dict(img_shape=(h, w), pad_shape=(h, w), ori_shape=(h, w))
             ] * len(images)
    with torch.no_grad():
        logits = model.encode_decode(images, metas)
        if not flip_tta:
            return logits.numpy()
        flipped = model.encode_decode(images.flip(-1), metas)
        probs = (logits.softmax(1) + flipped.softmax(1).flip(-1)) / 2
    return probs.log().numpy()


def assert_predictions(out_dir, names, scores, labels, metric):
    """The tool's prediction maps and metric: the metric (rounded to 2
    decimals) is the mIoU of those maps, and they are the argmax of
    ``scores`` where its top two are more than 1e-4 apart (the tool runs
    batch 4, here 36: logits differ by ~5e-6, an argmax may flip where
    they are closer)."""
    assert sorted(p.stem for p in out_dir.glob('*.png')) == names
    written = np.stack(
        [np.array(Image.open(out_dir / f'{n}.png')) for n in names])
    assert metric == pytest.approx(miou(written, labels, 7), abs=0.006)
    pred, _, gap = top2(scores, axis=1)
    decided = gap > 1e-4
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(written[decided], pred[decided])


def test_train_save_test_resume(landcover_tiles, tmp_path, repo_root,
                                monkeypatch):
    train_tool = load_tool('train.py')
    test_tool = load_tool('test.py')
    work = tmp_path / 'work'
    monkeypatch.chdir(repo_root)
    train_tool.main([CONFIG, '--work-dir', str(work), '--cfg-options'] +
                    tiny_options(landcover_tiles, 2))
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert saved['meta']['iter'] == 2

    metrics = test_tool.main([
        CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'test'),
        '--show-dir', str(tmp_path / 'vis'), '--out',
        str(tmp_path / 'pred_plain'), '--cfg-options'
    ] + tiny_options(landcover_tiles, 2))
    images, labels = read_val_tiles(landcover_tiles)
    names = sorted(p.stem for p in
                   (landcover_tiles / 'img_dir' / 'val').glob('*.tif'))
    assert_predictions(tmp_path / 'pred_plain', names,
                       predict_from_checkpoint(ckpt, images), labels,
                       metrics['mIoU'])
    pictures = list((tmp_path / 'vis').rglob('*.png'))
    assert pictures, 'no prediction pictures written by --show-dir'

    # flip TTA and per-tile prediction maps
    out_dir = tmp_path / 'pred'
    tta_metrics = test_tool.main([
        CONFIG, str(ckpt), '--tta', '--out', str(out_dir), '--work-dir',
        str(tmp_path / 'tta'), '--cfg-options'
    ] + tiny_options(landcover_tiles, 2))
    assert_predictions(out_dir, names,
                       predict_from_checkpoint(ckpt, images, flip_tta=True),
                       labels, tta_metrics['mIoU'])

    # --resume without a path picks the latest checkpoint of the work dir
    train_tool.main([CONFIG, '--work-dir', str(work), '--resume',
                     '--cfg-options'] + tiny_options(landcover_tiles, 4))
    resumed = torch.load(work / 'iter_4.pth', map_location='cpu',
                         weights_only=True)
    assert resumed['meta']['iter'] == 4
    # the optimizer continued: AdamW step count went on from 2 to 4
    state = next(iter(resumed['optimizer']['state'].values()))
    assert int(state['step']) == 4


def test_dist_train_two_cpu_processes(landcover_tiles, tmp_path, repo_root):
    work = tmp_path / 'dist'
    env = dict(os.environ, PORT=str(free_port()))
    env.pop('PYTHON', None)
    if (repo_root / '.venv' / 'bin' / 'python').is_file():
        # as after the README's set-up: no PYTHON=, no activated venv, and
        # no python with torch on PATH (tools/_python.sh finds .venv)
        env['PATH'] = '/usr/bin:/bin'
        env.pop('VIRTUAL_ENV', None)
    else:
        env['PYTHON'] = sys.executable
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


NOISE = ('Could not import OneDL', 'Could not safely load weights',
         'Falling back to weights_only=False')


def test_logs_are_clean_and_checkpoints_load_weights_only(
        landcover_tiles, tmp_path, repo_root):
    """A user's train + test run: no OneDL import lines, no weights_only
    fallback when the checkpoint is loaded (save_best stores a numpy
    float32 score in it)."""
    work = tmp_path / 'work'
    options = [o for o in tiny_options(landcover_tiles, 2)
               if not o.startswith('default_hooks.checkpoint.save_best')]
    runs = []
    for cmd in (['tools/train.py', CONFIG, '--work-dir', str(work)],
                ['tools/test.py', CONFIG, str(work / 'best_mIoU_iter_2.pth'),
                 '--work-dir', str(tmp_path / 'test')]):
        proc = subprocess.run([sys.executable] + cmd + ['--cfg-options'] +
                              options, cwd=repo_root, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(proc.stdout + proc.stderr)
    logs = sorted(tmp_path.rglob('*.log'))
    assert len(logs) == 2
    assert 'Loads checkpoint by local backend' in runs[1]
    for text in runs + [p.read_text() for p in logs]:
        for noise in NOISE:
            assert noise not in text
    ckpt = torch.load(work / 'best_mIoU_iter_2.pth', map_location='cpu',
                      weights_only=True)
    assert isinstance(ckpt['message_hub']['runtime_info']['best_score'],
                      np.float32)


def test_dist_train_two_nodes_one_process_each(landcover_tiles, tmp_path,
                                               repo_root):
    """The multi-node flags: two launches on this machine as two nodes
    (NNODES=2, NODE_RANK 0 and 1, one shared MASTER_ADDR/PORT) form one
    world of 2 processes; only global rank 0 writes the checkpoint."""
    work = tmp_path / 'nodes'
    procs = []
    port = str(free_port())
    for node in (0, 1):
        env = dict(os.environ, PYTHON=sys.executable, PORT=port,
                   NNODES='2', NODE_RANK=str(node), MASTER_ADDR='127.0.0.1')
        procs.append(subprocess.Popen(
            ['bash', 'tools/dist_train.sh', CONFIG, '1', '--work-dir',
             str(work), '--cfg-options'] + tiny_options(landcover_tiles, 2),
            cwd=repo_root, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=600)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + \
        outs[1][-2000:]
    assert (work / 'iter_2.pth').is_file()
    log = next(work.rglob('*.log')).read_text()
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size


FAKE_SRUN = '''#!{python}
"""srun stand-in: records its options, runs --ntasks copies of the command
with Slurm's per-task variables."""
import os, subprocess, sys
args = sys.argv[1:]
opts = []
while args and args[0].startswith('-'):
    opts.append(args.pop(0))
    if opts[-1] == '-p':
        opts.append(args.pop(0))
open(os.environ['FAKE_SRUN_LOG'], 'w').write(' '.join(opts))
n = int(next(o for o in opts if o.startswith('--ntasks=')).split('=')[1])
procs = [subprocess.Popen(args, env=dict(
    os.environ, SLURM_PROCID=str(i), SLURM_NTASKS=str(n),
    SLURM_LOCALID=str(i), SLURM_NODELIST='node[01]')) for i in range(n)]
sys.exit(max(p.wait() for p in procs))
'''


def test_slurm_train_through_srun(landcover_tiles, tmp_path, repo_root):
    """tools/slurm_train.sh with GPUS=2: the srun options it passes, and the
    Slurm variables turned into a 2-process gloo world on a CPU machine
    (the first host of the node list, from scontrol, is the master)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN.format(python=sys.executable))
    (bin_dir / 'scontrol').write_text('#!/bin/sh\necho 127.0.0.1\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    work = tmp_path / 'slurm'
    env = dict(os.environ, PYTHON=sys.executable, MASTER_PORT=str(free_port()),
               GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1',
               FAKE_SRUN_LOG=str(tmp_path / 'srun.txt'),
               PATH=f'{bin_dir}:{os.environ["PATH"]}')
    env.pop('MASTER_ADDR', None)
    proc = subprocess.run(
        ['bash', 'tools/slurm_train.sh', 'gpu-part', 's4p', CONFIG,
         str(work), '--cfg-options'] + tiny_options(landcover_tiles, 2),
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    opts = (tmp_path / 'srun.txt').read_text().split()
    assert opts[:2] == ['-p', 'gpu-part']
    for o in ('--job-name=s4p', '--gres=gpu:2', '--ntasks=2',
              '--ntasks-per-node=2', '--cpus-per-task=1',
              '--kill-on-bad-exit=1'):
        assert o in opts
    assert (work / 'iter_2.pth').is_file()
    log = next(work.rglob('*.log')).read_text()
    assert 'Distributed launcher: slurm' in log
    assert 'GPU number: 2' in log
