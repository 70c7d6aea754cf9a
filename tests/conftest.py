import os
from pathlib import Path

import pytest

from s5_mm.testing import load_tool, make_toy_seg_data

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


@pytest.fixture(scope='session')
def landcover_tiles(tmp_path_factory, shared_data):
    """The land-cover scene of the shared data cut into train/val tiles
    (tools/dataset_converters/prepare_landcover.py, no download)."""
    prepare = load_tool('dataset_converters/prepare_landcover.py')
    out = tmp_path_factory.mktemp('landcover')
    prepare.prepare_landcover(out, src=shared_data / 'landcover_nc',
                              fetch=False)
    return out


@pytest.fixture(scope='session')
def toy_seg_data(tmp_path_factory):
    """4 labelled 20x20 and 6 unlabelled (12..22)x20 RGB images
    (:func:`s5_mm.testing.make_toy_seg_data`)."""
    return make_toy_seg_data(tmp_path_factory.mktemp('toy'))


def pytest_configure(config):
    # xdist workers share 2 cores: one thread each avoids oversubscription
    # (it made CPU training steps 10x slower here).
    if os.environ.get('PYTEST_XDIST_WORKER'):
        import torch
        torch.set_num_threads(1)
        os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture(autouse=True)
def _module_default_scope(request):
    """Registry scope named by a test module's ``DEFAULT_SCOPE``, set before
    each of its tests: a scope set once at import is overwritten by the
    modules an xdist worker runs in between."""
    scope = getattr(request.module, 'DEFAULT_SCOPE', None)
    if scope is not None:
        from mmengine.registry import init_default_scope
        init_default_scope(scope)
