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


# the segmentation config kinds of the demos, by test name
KIND_CONFIGS = {
    'upernet': 'configs/demo/upernet_vit-tiny_landcover.py',
    's4p': 'configs/demo/s4p_vit-tiny_landcover.py',
    'mdf': 'configs/demo/mdf_vit-tiny_landcover.py',
    'mdf_plain': 'configs/demo/mdf_vit-tiny_landcover_plain.py',
}


def data_root_options(cfg, data_root):
    """``--cfg-options`` entries pointing every test dataset of ``cfg``
    (one dataset or an ``MDFConcatDataset``) at ``data_root``."""
    ds = cfg.test_dataloader.dataset
    if 'datasets' in ds:
        return [f'test_dataloader.dataset.datasets.{i}.data_root={data_root}'
                for i in range(len(ds.datasets))]
    return [f'test_dataloader.dataset.data_root={data_root}']


def kind_checkpoints(tmp_path_factory, shared_data, data_root):
    """``{kind: checkpoint path}`` for :data:`KIND_CONFIGS`, all from the
    briefly trained plain model (:func:`trained_model`) loaded as each
    config's model loads a plain checkpoint (S4P: student and EMA teacher;
    MoE-MDF: every decoder, lc7's classifier kept, lc3's merged, fc2 split
    into experts), then made to differ where the kinds do: the teacher's
    classifier rows rolled by one class (teacher class = student class - 1)
    and each expert perturbed. ``meta.dataset_meta`` as the Runner saves it
    (the MoE-MDF one: a list, one metainfo per dataset, from the test set
    under ``data_root``, which needs ``run_mdf_demo.make_mdf_splits``)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from s5_mm.registry import DATASETS, MODELS
    from s5_mm.utils.checkpoint import load_checked
    _, _, plain = trained_model(tmp_path_factory, shared_data)
    out_dir = _base(tmp_path_factory) / 'kind_checkpoints'
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = torch.load(plain, map_location='cpu', weights_only=False)['meta']
    init_default_scope('mmseg')
    paths = {}
    for kind, rel in KIND_CONFIGS.items():
        path = out_dir / f'{kind}.pth'
        paths[kind] = path
        if path.is_file():
            continue
        cfg = Config.fromfile(str(TOOLS_DIR.parent / rel))
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        load_checked(model, str(plain))
        dataset_meta = meta['dataset_meta']
        with torch.no_grad():
            if kind == 's4p':
                cls = model.teacher.decode_head.conv_seg
                cls.weight.copy_(cls.weight.roll(-1, 0))
                cls.bias.copy_(cls.bias.roll(-1, 0))
            elif kind.startswith('mdf'):
                for name, p in model.backbone.named_parameters():
                    if '.experts.' in name:
                        p.add_(torch.randn_like(p) * 0.05)
                ds = cfg.test_dataloader.dataset
                for part in ds.datasets:
                    part.data_root = str(data_root)
                dataset_meta = DATASETS.build(ds).metainfo
        torch.save(dict(state_dict=model.state_dict(),
                        meta=dict(meta, dataset_meta=dataset_meta)),
                   str(path) + '.tmp')
        os.replace(str(path) + '.tmp', path)
    return paths
