import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f'shared data folder not found: {SHARED_DATA}')
    return SHARED_DATA


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


def pytest_configure(config):
    # xdist workers share 2 cores: one thread each avoids oversubscription
    # (it made CPU training steps 10x slower here).
    if os.environ.get('PYTEST_XDIST_WORKER'):
        import torch
        torch.set_num_threads(1)
        os.environ.setdefault('OMP_NUM_THREADS', '1')
