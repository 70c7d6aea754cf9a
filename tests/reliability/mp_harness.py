"""Run tools/train.py on W gloo processes (torchrun's environment: RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or in this process, and
read back what the run left: the final checkpoint and the logged metrics.

Children run one thread each (OMP_NUM_THREADS=1: CI has 2 cores). A run
that does not end within ``timeout`` seconds on every rank is killed and
fails the test: a hang at the end of training or validation must not
block CI.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mmengine.config import Config

from s5_mm.testing.checks import free_port

REPO = Path(__file__).resolve().parents[2]
TRAIN = str(REPO / 'tools' / 'train.py')


def dump_config(cfg: dict, path) -> str:
    Config(cfg).dump(str(path))
    return str(path)


def _kill(procs) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)  # its own group: no orphans
    for p in procs:
        p.wait()


def run_ranks(args, work_dir, world: int = 2, timeout: float = 240.) -> None:
    """``python ARGS`` on ``world`` processes with torchrun's environment;
    raises AssertionError naming the ranks that failed or did not finish
    within ``timeout`` seconds (those are killed)."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    procs, logs = [], []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world),
                   LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                   MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                   OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
                   PYTHONPATH=os.pathsep.join(
                       [str(REPO), os.environ.get('PYTHONPATH', '')]))
        env.pop('PYTEST_XDIST_WORKER', None)
        log = open(work_dir / f'rank{rank}.log', 'wb')
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, *args], env=env, stdout=log,
            stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True))
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline:
                hung = [r for r, p in enumerate(procs) if p.poll() is None]
                _kill(procs)
                raise AssertionError(
                    f'ranks {hung} of {world} did not finish within '
                    f'{timeout:.0f} s (hang?); logs in {work_dir}')
            time.sleep(0.2)
    finally:
        _kill(procs)
        for log in logs:
            log.close()
    for rank, p in enumerate(procs):
        if p.returncode != 0:
            tail = (work_dir / f'rank{rank}.log').read_text()[-3000:]
            raise AssertionError(
                f'rank {rank} exited with {p.returncode}:\n{tail}')


def train_distributed(config: str, work_dir, world: int = 2,
                      timeout: float = 240.) -> None:
    """tools/train.py --launcher pytorch on ``world`` processes."""
    run_ranks([TRAIN, config, '--work-dir', str(work_dir), '--launcher',
               'pytorch'], work_dir, world, timeout)


def train_single(config: str, work_dir) -> None:
    """tools/train.py in this process (no launcher)."""
    from s5_mm.testing import load_tool
    load_tool('train.py').main([config, '--work-dir', str(work_dir)])


def final_metrics(work_dir) -> dict:
    """The last validation metrics rank 0 logged (LocalVisBackend's
    scalars.json)."""
    files = sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    rows = [json.loads(line) for line in Path(files[-1]).read_text()
            .splitlines() if line.strip()]
    val = [r for r in rows if not any(k in r for k in ('loss', 'lr'))]
    assert val, f'no validation metrics in {files[-1]}'
    skip = ('step', 'time', 'data_time')
    return {k: v for k, v in val[-1].items() if k not in skip}
