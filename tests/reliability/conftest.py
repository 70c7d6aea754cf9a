"""Fixtures of the bad-input and fault tests (helpers: rel_utils.py)."""
import pytest
from rel_utils import (CONFIG, make_tiles, save_tiny_checkpoint,
                       tiny_seg_config, train_options)


@pytest.fixture(scope='session')
def tiles(tmp_path_factory):
    return make_tiles(tmp_path_factory.mktemp('tiles'))


@pytest.fixture(scope='session')
def trained(tmp_path_factory, tiles):
    """A work dir after 2 iterations, a checkpoint per iteration."""
    from s5_mm.testing import load_tool
    work = tmp_path_factory.mktemp('trained')
    load_tool('train.py').main([CONFIG, '--work-dir', str(work),
                                '--cfg-options'] +
                               train_options(tiles, 2, val=False))
    return work


@pytest.fixture
def seg(tmp_path):
    """(config path, checkpoint path) of a tiny 3-band, 3-class segmentor."""
    from mmengine.config import Config
    cfg = tiny_seg_config()
    cfg_path = tmp_path / 'tiny_seg.py'
    Config(cfg).dump(str(cfg_path))
    ckpt = save_tiny_checkpoint(cfg, tmp_path / 'tiny_seg.pth')
    return str(cfg_path), ckpt
