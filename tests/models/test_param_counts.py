"""Parameter counts of the paper (S5_METHOD.md section 3), built on the meta
device from the _base_ model configs."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope

import s5_mm  # noqa: F401
import s5_mm.models.detectors  # noqa: F401  (registers the MoE detector)
import s5_mm.models.segmentors.multi_head  # noqa: F401  (registers it)

CFG = Path(__file__).resolve().parents[2] / 'configs'
WIDTH = dict(b=768, l=1024, h=1280)


def millions(cfg_path, scope='mmseg', **overrides):
    cfg = Config.fromfile(str(cfg_path))
    cfg.merge_from_dict(overrides)
    init_default_scope(scope)
    with torch.device('meta'):
        model = ROOT_MODELS.build(cfg.model)
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)


def seg_overrides(arch):
    c = WIDTH[arch]
    return {'model.backbone.arch': arch, 'model.neck.in_channels': c,
            'model.decode_head.in_channels': [c] * 4}


def mdf_overrides(arch, num_experts=4, p=256):
    c = WIDTH[arch]
    out = {'model.backbone.arch': arch, 'model.neck.in_channels': c,
           'model.backbone.num_experts': num_experts,
           'model.backbone.expert_width': p}
    for name in ('vaihingen', 'potsdam', 'loveda', 'openearthmap'):
        out[f'model.decode_head.{name}.in_channels'] = [c] * 4
    return out


@pytest.mark.parametrize('arch,expected', [('b', 103.2), ('l', 327.4),
                                           ('h', 663.4)])
def test_s4p_segmentor(arch, expected):
    path = CFG / '_base_' / 'models' / 's5_upernet_vit.py'
    assert millions(path, **seg_overrides(arch)) == expected


@pytest.mark.parametrize('arch,num_experts,p,expected', [
    ('b', 4, 256, 160.4), ('b', 0, 256, 132.1), ('b', 4, 128, 146.2),
    ('b', 4, 512, 188.7), ('l', 4, 256, 435.0), ('h', 4, 256, 824.5)])
def test_moe_mdf_segmentor(arch, num_experts, p, expected):
    path = CFG / '_base_' / 'models' / 's5_moe_mdf_seg.py'
    overrides = mdf_overrides(arch, num_experts, p)
    if num_experts == 0:
        overrides['model.backbone.dataset_names'] = None
    assert millions(path, **overrides) == expected


def test_oriented_rcnn_vit_b():
    path = CFG / '_base_' / 'models' / 's5_oriented_rcnn_vit.py'
    assert millions(path, scope='mmrotate') == 111.2


def test_moe_oriented_rcnn_two_datasets():
    path = CFG / '_base_' / 'models' / 's5_moe_oriented_rcnn_vit.py'
    assert millions(path, scope='mmrotate') == 138.3
    c = WIDTH['l']
    overrides = {'model.backbone.arch': 'l', 'model.neck.in_channels': c,
                 'model.dataset_heads.dior.neck.in_channels': [c] * 4,
                 'model.dataset_heads.dota.neck.in_channels': [c] * 4}
    assert millions(path, scope='mmrotate', **overrides) == 377.8


@pytest.mark.parametrize('rel,expected', [
    ('s4p/vit-b_rs4p1m.py', 103.2),
    ('s4p/vit-l_rs4p1m.py', 327.4),
    ('s4p/vit-h_rs4p1m.py', 663.4),
])
def test_full_configs(rel, expected):
    path = CFG / rel
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with torch.device('meta'):
        model = ROOT_MODELS.build(cfg.model)
    # a semi-supervised wrapper's teacher copy is not counted
    model = getattr(model, 'student', model)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6,
                 1) == expected
