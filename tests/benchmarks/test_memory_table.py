"""benchmarks/memory_table.py: its figures against values computed by hand
for small modules, and a tiny S4P model run through the whole table."""
import importlib.util

import pytest
import torch
from torch import nn

DEFAULT_SCOPE = 'mmseg'
C, DEPTH, SIZE = 32, 2, 32


@pytest.fixture(scope='module')
def mt(repo_root):
    spec = importlib.util.spec_from_file_location(
        'memory_table', repo_root / 'benchmarks' / 'memory_table.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_saved_bytes_of_a_known_mlp(mt):
    mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))
    x = torch.randn(5, 8)
    with mt.SavedTensorMeter(mlp) as meter:
        out = mlp(x)
    # linear 1 saves x, GELU its input, linear 2 its input; the weights
    # are parameters (not counted)
    assert meter.total == 4 * (5 * 8 + 5 * 16 + 5 * 16)
    out.sum().backward()  # the hooks handed the tensors back unchanged
    assert mlp[0].weight.grad is not None


def test_a_storage_saved_twice_counts_once_and_views_count_the_storage(mt):
    w = nn.Parameter(torch.randn(6, 10))
    with mt.SavedTensorMeter(nn.ParameterList([w])) as meter:
        y = w * 2          # saves nothing of size (scalar factor)
        z = y * y          # saves y twice
        v = z[:, :5].exp()  # saves its output, a new (6, 5) storage
    assert meter.total == 4 * 60 + 4 * 30
    assert v.requires_grad


def test_fused_attention_saves_no_attention_matrix(mt):
    q = torch.randn(2, 2, 64, 8, device='meta', requires_grad=True)
    k, v = (torch.randn(2, 2, 64, 8, device='meta', requires_grad=True)
            for _ in range(2))
    holder = nn.Module()
    with mt.SavedTensorMeter(holder) as plain:
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
    with mt.fused_attention(), mt.SavedTensorMeter(holder) as fused:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 2, 64, 8)
    qkv_out = 4 * 4 * (2 * 2 * 64 * 8)  # q, k, v, output
    lse = 4 * 2 * 2 * 64
    assert qkv_out <= fused.total <= qkv_out + lse + 64
    # the math path keeps the N x N attention matrix
    assert plain.total >= 4 * 2 * 2 * 64 * 64 > fused.total


@pytest.fixture(scope='module')
def tiny_cfg(mt):
    cfg = mt.s4p_model_cfg('b')
    cfg.segmentor.backbone.update(
        arch=dict(embed_dims=C, num_layers=DEPTH, num_heads=2,
                  out_indices=(0, 1, 1, 1)), img_size=SIZE, patch_size=8)
    cfg.segmentor.neck.in_channels = C
    cfg.segmentor.decode_head.update(in_channels=[C] * 4, channels=8)
    return cfg


def test_parameter_counts_of_a_tiny_s4p_model(mt, tiny_cfg):
    counts = mt.parameter_counts(tiny_cfg)
    real = mt.build_meta(tiny_cfg).student
    assert counts['total'] == sum(p.numel() for p in real.parameters())
    assert counts['trainable'] == counts['total'] - C  # frozen cls_token
    # pre-norm block: 2 LayerNorms, qkv, proj, fc1 (4C), fc2
    assert counts['block'] == 12 * C * C + 13 * C
    assert counts['root'] == counts['total'] - DEPTH * counts['block']


def test_table_rows_of_a_tiny_s4p_model(mt, tiny_cfg):
    rows = mt.memory_rows(tiny_cfg, 'tiny', 2, 2, SIZE, gpus=4)
    counts = mt.parameter_counts(tiny_cfg)
    assert len(rows) == 8
    by = {(r['precision'], r['with_cp'], r['shards']): r for r in rows}
    for (prec, cp, shards), r in by.items():
        assert r['weights'] == 4 * counts['total'] / shards
        assert r['grads'] == 4 * counts['trainable'] / shards
        assert r['adamw'] == 8 * counts['trainable'] / shards
        assert r['total'] == pytest.approx(
            r['weights'] + r['copies'] + r['grads'] + r['adamw'] +
            r['activations'])
        # sharding never divides the activations
        assert r['activations'] == by[(prec, cp, 1)]['activations']
    assert by[('bf16', False, 1)]['copies'] == 2 * counts['total']
    assert by[('fp32', False, 1)]['copies'] == 0
    assert by[('bf16', False, 4)]['copies'] == 2 * (
        counts['root'] + 2 * counts['block'])
    for prec in ('fp32', 'bf16'):
        plain, cp = by[(prec, False, 1)], by[(prec, True, 1)]
        assert cp['held'] < plain['held']
        assert cp['activations'] == cp['held'] + plain['block']
    # the labelled images' 16-class logits at full size (the CE input)
    # alone are saved: a floor on the activations
    assert by[('fp32', False, 1)]['held'] > 4 * 2 * 16 * SIZE * SIZE
    # bf16 halves most of them (some losses stay fp32, labels int64)
    ratio = by[('bf16', False, 1)]['held'] / by[('fp32', False, 1)]['held']
    assert 0.5 <= ratio < 0.8


def test_markdown_and_out_file(mt, tiny_cfg, tmp_path, monkeypatch):
    rows = mt.memory_rows(tiny_cfg, 'tiny', 2, 2, SIZE, gpus=8)
    text = mt.markdown(rows, 8)
    assert text.count('\n') == 2 + 8 - 1
    assert '| FSDP x8 |' in text and '| none |' in text
    monkeypatch.setattr(mt, 's4p_model_cfg', lambda arch: tiny_cfg)
    out = tmp_path / 'table.md'
    mt.main(['--archs', 'b', '--labelled', '2', '--unlabelled', '2',
             '--size', str(SIZE), '--out', str(out)])
    assert '| ViT-B (' in out.read_text()


def test_meta_pass_saves_what_a_real_cpu_pass_saves(mt, tiny_cfg):
    """The meta-device measurement equals the same pass on real tensors
    (math attention in both: CPU has no fused kernel)."""
    totals = []
    for device in ('meta', 'cpu'):
        if device == 'meta':
            model = mt.build_meta(tiny_cfg)
        else:
            from s5_mm.registry import MODELS
            torch.manual_seed(0)
            model = MODELS.build(tiny_cfg).train()
        inputs, samples = mt.s4p_batch(2, 2, SIZE, torch.float32, device)
        with mt.meta_safe_accuracy(), mt.SavedTensorMeter(model) as meter:
            model.loss(inputs, samples)
        totals.append(meter.total)
    assert totals[0] == totals[1] > 0
