"""configs/mdf and configs/sdf: the paper's settings, parameter counts
(meta device) and buildable pipelines; the datasets themselves are not
instantiated (no data here)."""
from pathlib import Path

import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope

import s5_mm  # noqa: F401
from s5_mm.models.segmentors.mdf_utils import dataset_test_cfgs

REPO = Path(__file__).resolve().parents[2]
NAMES = ['vaihingen', 'potsdam', 'loveda', 'openearthmap']

MDF = {'configs/mdf/vit-b-moe_4seg.py': ('b', 4, 160.4),
       'configs/mdf/vit-l-moe_4seg.py': ('l', 4, 435.0),
       'configs/mdf/vit-h-moe_4seg.py': ('h', 4, 824.5),
       'configs/mdf/vit-b_4seg.py': ('b', 0, 132.1)}
SDF = {f'configs/sdf/vit-b_{n}.py': n for n in NAMES}


def load(rel):
    cfg = Config.fromfile(str(REPO / rel))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


def millions(cfg):
    with torch.device('meta'):
        model = ROOT_MODELS.build(cfg.model)
    return model, round(sum(p.numel() for p in model.parameters()) / 1e6, 1)


@pytest.mark.parametrize('rel', sorted(MDF))
def test_mdf_paper_settings_and_parameter_counts(rel):
    arch, experts, expected = MDF[rel]
    cfg = load(rel)
    model, count = millions(cfg)
    assert count == expected
    assert model.dataset_names == NAMES
    bb = cfg.model.backbone
    assert (bb.arch, bb.num_experts, bb.expert_width) == (arch, experts, 256)
    # heads: 5 / 5 / 7 / 9 classes, new classifiers
    assert {n: h.num_classes for n, h in cfg.model.decode_head.items()} == \
        dict(vaihingen=5, potsdam=5, loveda=7, openearthmap=9)
    assert cfg.load_from.startswith('pretrain/') and f'vit-{arch}' in \
        cfg.load_from
    # schedule: 100 epochs of the longest dataset, AdamW 5e-5, wd 0.05,
    # cosine over the whole run, layer-decay option
    assert cfg.train_cfg.type == 'MultiSourceTrainLoop'
    assert cfg.train_cfg.max_epochs == 100
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 5e-5, 0.05)
    assert cfg.optim_wrapper.constructor == 'S5LayerDecayOptimizerConstructor'
    assert cfg.optim_wrapper.paramwise_cfg.num_layers == \
        dict(b=12, l=24, h=32)[arch]
    (sched, ) = cfg.param_scheduler
    assert sched.type == 'CosineAnnealingLR' and 'end' not in sched
    # 12 images per GPU per dataset, every dataset in every step
    dl = cfg.train_dataloader
    assert dl.batch_size == dl.sampler.batch_size == 48
    assert dl.sampler.type == 'SeededMultiSourceSampler'
    assert list(dl.sampler.source_ratio) == [1, 1, 1, 1]
    assert dl.dataset.type == 'SeededDataset'
    assert dl.dataset.dataset.type == 'MDFConcatDataset'
    assert dl.dataset.dataset.dataset_names == NAMES
    assert [d.type for d in dl.dataset.dataset.datasets] == [
        'S5VaihingenDataset', 'S5PotsdamDataset', 'S5LoveDADataset',
        'OpenEarthMapDataset']
    assert cfg.model.train_cfg.dataset_loss_weights == {n: 1. for n in NAMES}
    assert not cfg.model.train_cfg.dataset_start_iters
    # per-dataset protocols
    tc = dataset_test_cfgs(cfg.model.test_cfg, NAMES)
    assert tc['vaihingen'].flip and tc['potsdam'].flip
    assert tc['vaihingen'].mode == tc['potsdam'].mode == 'whole'
    assert (tc['loveda'].mode, tuple(tc['loveda'].crop_size),
            tuple(tc['loveda'].stride)) == ('slide', (512, 512), (256, 256))
    assert not tc['loveda'].get('flip') and \
        not tc['openearthmap'].get('flip')
    oem_test = cfg.val_dataloader.dataset.datasets[3].pipeline
    resize = [t for t in oem_test if t.type == 'Resize']
    assert resize and tuple(resize[0].scale) == (512, 512)
    assert [t.type for t in oem_test].index('Resize') < \
        [t.type for t in oem_test].index('LoadAnnotations')
    ev = cfg.val_evaluator
    assert ev.type == 'MultiDatasetSegMetric'
    assert list(ev.dataset_metrics) == NAMES
    assert ev.dataset_metrics.potsdam.iou_metrics[0] == 'mFscore'
    assert all(ev.dataset_metrics[n].iou_metrics[0] == 'mIoU'
               for n in ('vaihingen', 'loveda', 'openearthmap'))
    assert cfg.val_dataloader.dataset.dataset_names == NAMES
    assert cfg.default_hooks.checkpoint.save_best == 'mean'
    assert [h.type for h in cfg.custom_hooks] == ['IterSeedHook',
                                                 'MultiDatasetCheckHook']


def test_pipelines_build():
    cfg = load('configs/mdf/vit-b-moe_4seg.py')
    for mdf in (cfg.train_dataloader.dataset.dataset,  # in SeededDataset
                cfg.val_dataloader.dataset):
        for ds in mdf.datasets:
            Compose(ds.pipeline)
            keys = ds.pipeline[-1].meta_keys
            assert 'dataset_name' in keys


@pytest.mark.parametrize('rel', sorted(SDF))
def test_sdf_configs(rel):
    name = SDF[rel]
    cfg = load(rel)
    model, count = millions(cfg)
    assert count == 103.2
    assert model.dataset_names == [name]
    assert cfg.model.backbone.num_experts == 0
    dl = cfg.train_dataloader
    assert dl.batch_size == dl.sampler.batch_size == 12
    assert dl.dataset.dataset.dataset_names == [name]
    assert list(cfg.val_evaluator.dataset_metrics) == [name]
    tc = dataset_test_cfgs(cfg.model.test_cfg, [name])[name]
    assert tc.mode == ('slide' if name == 'loveda' else 'whole')
    assert bool(tc.get('flip')) == (name in ('vaihingen', 'potsdam'))
    opt = cfg.optim_wrapper.optimizer
    assert (opt.lr, opt.weight_decay, cfg.train_cfg.max_epochs) == \
        (5e-5, 0.05, 100)


def test_loveda_submit_config():
    cfg = load('configs/mdf/vit-b-moe_loveda-submit.py')
    ds = cfg.test_dataloader.dataset
    assert ds.dataset_names == ['loveda']
    assert 'img_dir/test' in ds.datasets[0].data_prefix.img_path
    metric = cfg.test_evaluator.dataset_metrics.loveda
    assert metric.format_only and metric.output_dir
    _, count = millions(cfg)
    assert count == 160.4
