"""The pinned stack imports and its compiled pieces work."""
import importlib

import pytest
import torch


@pytest.mark.parametrize('name', [
    's5_mm', 'mmengine', 'mmcv', 'mmseg.models', 'mmdet.models',
    'mmpretrain.models', 'mmrotate.models', 'rasterio', 'torchvision.ops'
])
def test_imports(name):
    importlib.import_module(name)


def test_torch_torchvision_pair_matches_constraints(repo_root):
    import torchvision
    pins = dict(
        line.split('==') for line in
        (repo_root / 'requirements' / 'constraints.txt').read_text().split()
        if '==' in line)
    assert torch.__version__.split('+')[0] == pins['torch']
    assert torchvision.__version__.split('+')[0] == pins['torchvision']
    # a mismatched torchvision fails exactly here
    keep = torchvision.ops.nms(
        torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]]),
        torch.tensor([0.9, 0.8]), 0.5)
    assert keep.tolist() == [0]


def test_mmcv_rotated_ops_on_cpu():
    from mmcv.ops import box_iou_rotated, nms_rotated
    a = torch.tensor([[0., 0., 4., 2., 0.]])
    b = torch.tensor([[0., 0., 4., 2., 0.], [0., 0., 2., 4., 0.]])
    ious = box_iou_rotated(a, b)
    # identical box: 1; crossed 4x2 and 2x4 boxes share a 2x2 square
    assert ious[0, 0].item() == pytest.approx(1.0, abs=1e-5)
    assert ious[0, 1].item() == pytest.approx(4 / 12, abs=1e-5)
    scores = torch.tensor([0.5, 0.9])
    assert nms_rotated(b, scores, 0.5)[1].tolist() == [1, 0]
    assert nms_rotated(b, scores, 0.2)[1].tolist() == [1]
