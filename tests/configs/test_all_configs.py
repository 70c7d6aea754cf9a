"""Every file under configs/ loads and its pieces build: the model (meta
device), every dataloader's dataset with its pipeline (``lazy_init``: no
annotation or image file is read), stand-alone pipelines, evaluators, and the
registered types of loops, samplers, hooks, optimizer wrappers, schedulers
and visualizer. New config folders are picked up by the glob."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import (DATA_SAMPLERS, DATASETS, FUNCTIONS, HOOKS,
                               LOOPS, METRICS, MODEL_WRAPPERS, MODELS,
                               OPTIM_WRAPPERS, PARAM_SCHEDULERS, RUNNERS,
                               STRATEGIES, TRANSFORMS, VISUALIZERS,
                               init_default_scope)

import s5_mm  # noqa: F401
from s5_mm.datasets.seeded_dataset import SeededDataset

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
FILES = sorted(
    p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob('*.py'))
ENTRY = [f for f in FILES if not f.startswith('_base_/')]


def test_every_folder_has_a_readme_and_entries_exist():
    assert {
        'demo/upernet_vit-tiny_landcover.py', 'demo/s4p_vit-tiny_landcover.py',
        'demo/s4p-supervised_vit-tiny_landcover.py', 's4p/vit-b_rs4p1m.py',
        's4p/vit-l_rs4p1m.py', 's4p/vit-h_rs4p1m.py'
    } <= set(ENTRY)
    folders = {Path(f).parent for f in ENTRY} | {Path('.')}
    for folder in folders:
        assert (CONFIGS / folder / 'README.md').is_file(), folder


@pytest.mark.parametrize('rel', FILES)
def test_no_text_substitution_of_base_values(rel):
    # one style: lazy `_base_.x` references, never `{{_base_.x}}`
    assert '{{' not in (CONFIGS / rel).read_text()


def _scope(cfg, rel):
    if 'default_scope' in cfg:
        return cfg.default_scope
    assert rel.startswith('_base_/'), f'{rel}: entry config without scope'
    # _base_ model files: MMRotate for detectors (MMDet types), else MMSeg
    model_type = cfg.get('model', {}).get('type', '')
    return 'mmrotate' if model_type.startswith('mmdet.') else 'mmseg'


def _register_all(scope):
    if scope == 'mmseg':
        from mmseg.utils import register_all_modules
        register_all_modules(init_default_scope=False)
    else:
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        from mmrotate.utils import register_all_modules as register_rotate
        register_rotate(init_default_scope=False)
    init_default_scope(scope)


def _lazy(ds, root):
    """A dataset config (and its children) that reads no file when built:
    ``lazy_init``, and ``data_root`` moved to ``root`` with empty prefix
    folders (some datasets check that they exist)."""
    ds = copy.deepcopy(ds)
    if 'datasets' in ds:  # ConcatDataset
        ds['datasets'] = [_lazy(c, root) for c in ds['datasets']]
    if 'dataset' in ds:  # RepeatDataset, ClassBalancedDataset
        ds['dataset'] = _lazy(ds['dataset'], root)
    if ds.get('type') == 'SeededDataset':  # no init of its own
        return ds
    if 'datasets' in ds or 'dataset' in ds:
        ds['lazy_init'] = True
        return ds
    ds.update(lazy_init=True, data_root=str(root))
    for prefix in ds.get('data_prefix', {}).values():
        (root / prefix).mkdir(parents=True, exist_ok=True)
    return ds


def _pipelines_of(ds):
    if 'pipeline' in ds:
        yield ds['pipeline']
    for child in ds.get('datasets', []):
        yield from _pipelines_of(child)
    if 'dataset' in ds:
        yield from _pipelines_of(ds['dataset'])


def _built_pipelines(dataset):
    if isinstance(dataset, SeededDataset):  # delegates its attributes
        dataset = dataset.dataset
    if hasattr(dataset, 'pipeline'):
        yield dataset.pipeline
    for child in getattr(dataset, 'datasets', []):
        yield from _built_pipelines(child)
    if hasattr(dataset, 'dataset'):
        yield from _built_pipelines(dataset.dataset)


def _is_pipeline(value):
    return isinstance(value, list) and value and all(
        isinstance(t, dict) and 'type' in t for t in value)


def _get(registry, name):
    """The class ``name`` resolves to in the default scope (or None)."""
    with registry.switch_scope_and_registry(None) as scoped:
        return scoped.get(name)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


@pytest.mark.parametrize('rel', FILES)
def test_config_builds(rel, tmp_path, monkeypatch):
    # evaluators may create their output_dir (relative, e.g. work_dirs/...)
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(str(CONFIGS / rel))
    scope = _scope(cfg, rel)
    _register_all(scope)

    if 'model' in cfg:
        with torch.device('meta'):
            model = MODELS.build(copy.deepcopy(cfg.model))
        assert type(model).__name__ == cfg.model.type.split('.')[-1]
        assert sum(p.numel() for p in model.parameters()) > 0

    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if key not in cfg:
            continue
        loader = cfg[key]
        assert _get(DATA_SAMPLERS, loader.sampler.type) is not None, \
            f'{rel}: {key}.sampler.type {loader.sampler.type!r}'
        dataset = DATASETS.build(_lazy(loader.dataset, tmp_path))
        # datasets may insert CheckLabelRange after loading (seg_lists.py)
        want = [sum(t['type'] != 'CheckLabelRange' for t in p)
                for p in _pipelines_of(loader.dataset)]
        got = [sum(type(t).__name__ != 'CheckLabelRange'
                   for t in p.transforms)
               for p in _built_pipelines(dataset)]
        assert got == want, f'{rel}: {key} pipelines'

    # stand-alone pipelines (e.g. a _base_ dataset's train / TTA pipeline)
    for key, value in cfg.items():
        if key.endswith('pipeline') and _is_pipeline(value):
            for t in value:
                TRANSFORMS.build(copy.deepcopy(t))

    for key in ('val_evaluator', 'test_evaluator'):
        for metric in _as_list(cfg.get(key, [])):
            METRICS.build(copy.deepcopy(metric))

    for key in ('train_cfg', 'val_cfg', 'test_cfg'):
        loop = cfg.get(key)
        if isinstance(loop, dict) and 'type' in loop:
            assert _get(LOOPS, loop.type) is not None, f'{rel}: {key}'
    hooks = list(cfg.get('default_hooks', {}).values()) + list(
        cfg.get('custom_hooks', []))
    for hook in hooks:
        assert _get(HOOKS, hook.type) is not None, f'{rel}: hook {hook.type}'
    if 'optim_wrapper' in cfg:
        assert _get(OPTIM_WRAPPERS, cfg.optim_wrapper.type) is not None
    for sched in _as_list(cfg.get('param_scheduler', [])):
        assert _get(PARAM_SCHEDULERS, sched.type) is not None, sched.type
    if 'visualizer' in cfg:
        assert _get(VISUALIZERS, cfg.visualizer.type) is not None
    # FlexibleRunner configs: runner, strategy, its model wrapper and the
    # wrapper's registered functions (auto-wrap policy)
    if 'runner_type' in cfg:
        assert _get(RUNNERS, cfg.runner_type) is not None, cfg.runner_type
    if 'strategy' in cfg:
        assert _get(STRATEGIES, cfg.strategy.type) is not None, \
            f'{rel}: strategy {cfg.strategy.type}'
        wrapper = cfg.strategy.get('model_wrapper') or {}
        if 'type' in wrapper:
            assert _get(MODEL_WRAPPERS, wrapper.type) is not None
        for key in ('auto_wrap_policy', 'param_init_fn'):
            fn = wrapper.get(key)
            if isinstance(fn, dict):
                fn, kwargs = fn.type, {k: v for k, v in fn.items()
                                       if k != 'type'}
                assert _get(FUNCTIONS, fn) is not None, f'{rel}: {key} {fn}'
                if 'layer_cls' in kwargs:
                    from s5_mm.engine.fsdp import resolve_classes
                    assert resolve_classes(kwargs['layer_cls'])
            elif isinstance(fn, str):
                assert _get(FUNCTIONS, fn) is not None, f'{rel}: {key} {fn}'
    if not rel.startswith('_base_/'):
        assert 'model' in cfg and 'train_dataloader' in cfg, rel
        assert cfg.custom_imports.imports == ['s5_mm']


@pytest.mark.parametrize('rel', ENTRY)
def test_training_is_resume_exact(rel):
    # per-sample pipeline seeds (SeededDataset + a Seeded* sampler) and
    # per-iteration global seeds (IterSeedHook): a resumed run repeats the
    # straight run (tests/reliability/test_exact_resume.py)
    cfg = Config.fromfile(str(CONFIGS / rel))
    if 'train_dataloader' not in cfg:
        pytest.skip(f'{rel}: no training')
    loader = cfg.train_dataloader
    assert loader.dataset.type == 'SeededDataset', rel
    assert loader.sampler.type.split('.')[-1] in (
        'SeededInfiniteSampler', 'SeededDefaultSampler',
        'SeededMultiSourceSampler'), rel
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert 'IterSeedHook' in hooks, rel
    # mmengine builds the sampler before it restores a resumed seed
    assert cfg.get('randomness', {}).get('seed') is not None, rel


# the CPU demos run in one process; every other training config gives the
# batch of 8 GPUs (docs/scaling.md)
ONE_PROCESS_FOLDERS = ('demo', 'selection')


@pytest.mark.parametrize('rel', ENTRY)
def test_training_configs_give_their_base_batch_size(rel):
    cfg = Config.fromfile(str(CONFIGS / rel))
    if 'train_dataloader' not in cfg:
        pytest.skip(f'{rel}: no training')
    assert 'auto_scale_lr' in cfg, f'{rel}: no auto_scale_lr'
    gpus = 1 if rel.split('/')[0] in ONE_PROCESS_FOLDERS else 8
    assert cfg.auto_scale_lr.base_batch_size == \
        gpus * cfg.train_dataloader.batch_size, rel
    assert cfg.auto_scale_lr.enable is False, rel
