"""A briefly trained land-cover demo model for the selection tests:
tests/selection and tests/tools share one trained checkpoint per pytest
session (under the session's base temporary folder)."""
import os
from pathlib import Path

from s5_mm.utils.tools import TOOLS_DIR, load_tool

SUP_CFG = (TOOLS_DIR.parent /
           'configs/demo/s4p-supervised_vit-tiny_landcover.py')
ITERS = 40  # enough for spread-out entropies (about 10 s unloaded)


def _base(tmp_path_factory):
    # S5MM_SELECTION_TEST_CACHE keeps tiles and model between sessions
    cache = os.environ.get('S5MM_SELECTION_TEST_CACHE')
    return Path(cache) if cache else tmp_path_factory.getbasetemp()


def landcover_tiles(tmp_path_factory, shared_data):
    """Prepared tiles + the demo's 'tiles' split (10 labelled / 89)."""
    prepare_landcover = load_tool(
        'dataset_converters/prepare_landcover.py').prepare_landcover
    base = _base(tmp_path_factory) / 'selection_landcover'
    if not (base / 'splits/tiles/unlabelled.txt').is_file():
        prepare_landcover(base, src=shared_data / 'landcover_nc',
                          fetch=False)
        load_tool('run_s4p_demo.py').make_splits(base, 'tiles', 10, 0.01)
    return base


def trained_model(tmp_path_factory, shared_data):
    """(data_root, config path, checkpoint path) after ITERS steps."""
    import torch
    from mmengine.runner import Runner
    data_root = landcover_tiles(tmp_path_factory, shared_data)
    work = _base(tmp_path_factory) / 'selection_model'
    ckpt = work / f'iter_{ITERS}.pth'
    cfg_path = work / 'config.py'
    if ckpt.is_file():
        return data_root, cfg_path, ckpt
    cfg = build_sup_cfg(data_root, work, ITERS)
    work.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(cfg_path))
    threads = torch.get_num_threads()
    Runner.from_cfg(cfg).train()
    torch.set_num_threads(threads)
    assert ckpt.is_file(), sorted(p.name for p in work.iterdir())
    return data_root, cfg_path, ckpt


def build_sup_cfg(data_root, work, iters, seed=0):
    import time
    demo = load_tool('run_s4p_demo.py')
    split = dict(labelled_list='splits/tiles/labelled.txt',
                 label_dir='ann_dir/train',
                 unlabelled_list='splits/tiles/unlabelled.txt')
    cfg = demo.build_cfg(SUP_CFG, data_root, split, work, seed, iters, {})
    cfg.default_hooks.pop('visualization', None)
    cfg.default_hooks.logger.interval = 10
    cfg.experiment_name = f'sel_{time.time_ns()}'
    cfg.val_cfg = None
    cfg.val_dataloader = None
    cfg.val_evaluator = None
    cfg.train_cfg.val_interval = 10 ** 9
    return cfg
