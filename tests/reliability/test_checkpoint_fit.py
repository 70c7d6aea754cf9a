"""Checkpoints that do not fit: the converters refuse to write a result that
maps nothing (or too little), tools/test.py refuses a checkpoint that leaves
model weights random, a bare state dict (no ``meta``) loads."""
import os
from collections import OrderedDict

import pytest
import torch
from rel_utils import CONFIG, last_line, snapshot, train_options

from s5_mm.testing import load_tool


def mae_like_state():
    """MAE key names (blocks.N..., patch_embed.proj)."""
    g = torch.Generator().manual_seed(0)
    return OrderedDict(
        (k, torch.randn(s, generator=g))
        for k, s in (('patch_embed.proj.weight', (32, 3, 4, 4)),
                     ('patch_embed.proj.bias', (32, )),
                     ('pos_embed', (1, 65, 32)), ('cls_token', (1, 1, 32)),
                     ('blocks.0.norm1.weight', (32, )),
                     ('blocks.0.attn.qkv.weight', (96, 32))))


def test_converter_refuses_a_checkpoint_it_cannot_map(tmp_path):
    """Defect 4 (converters): the S5 converter on an MAE file printed
    'converted 0 tensors' and wrote an empty checkpoint with exit 0."""
    src = tmp_path / 'mae.pth'
    torch.save({'model': mae_like_state()}, src)
    dst = tmp_path / 'out' / 'converted.pth'
    dst.parent.mkdir()
    dst.write_bytes(b'an earlier conversion')
    before = snapshot(dst.parent)
    with pytest.raises(SystemExit) as exc:
        load_tool('model_converters/s5official2s5mm.py').main(
            [str(src), str(dst)])
    msg = str(exc.value.code)
    assert 'converted 0 tensors' in msg and msg.endswith(str(src))
    assert snapshot(dst.parent) == before


def test_converter_refuses_mostly_unknown_keys(tmp_path):
    mae2s5mm = load_tool('model_converters/mae2s5mm.py')
    state = mae_like_state()
    for i in range(8):  # more keys without a mapping than with one
        state[f'encoder.layers.{i}.ln1.weight'] = torch.ones(32)
    src = tmp_path / 'odd.pth'
    torch.save(state, src)
    dst = tmp_path / 'odd_s5.pth'
    with pytest.raises(SystemExit) as exc:
        mae2s5mm.main([str(src), str(dst)])
    msg = str(exc.value.code)
    assert '8 source keys unknown' in msg and str(src) in msg
    assert not dst.exists()
    mae2s5mm.main([str(src), str(dst), '--allow-partial'])
    assert dst.is_file()


@pytest.mark.parametrize('kind', ['missing', 'zero-byte', 'truncated',
                                  'garbage'])
def test_converter_bad_files(tmp_path, kind):
    src = tmp_path / 'src.pth'
    if kind == 'zero-byte':
        src.write_bytes(b'')
    elif kind == 'truncated':
        torch.save({'model': mae_like_state()}, src)
        src.write_bytes(src.read_bytes()[:3000])
    elif kind == 'garbage':
        src.write_bytes(os.urandom(3000))
    with pytest.raises((OSError, RuntimeError)) as exc:
        load_tool('model_converters/mae2s5mm.py').main(
            [str(src), str(tmp_path / 'dst.pth')])
    assert str(src) in last_line(exc.value)
    assert not (tmp_path / 'dst.pth').exists()


def test_converter_invalid_numbers(tmp_path, capsys):
    mae2s5mm = load_tool('model_converters/mae2s5mm.py')
    for args in (['--img-size', '0'], ['--patch-size', '-16'],
                 ['--img-size', '30', '--patch-size', '16']):
        with pytest.raises(SystemExit) as exc:
            mae2s5mm.parse_args(['a.pth', 'b.pth'] + args)
        assert exc.value.code == 2
        assert args[-2] in capsys.readouterr().err


# ---------------------------------------------------------- tools/test.py
def _test(ckpt, tmp_path, tiles, *extra):
    return load_tool('test.py').main(
        [CONFIG, str(ckpt), '--work-dir', str(tmp_path / 'test'), *extra,
         '--cfg-options'] + train_options(tiles, 2))


def test_test_tool_refuses_a_checkpoint_that_does_not_fit(trained, tiles,
                                                          tmp_path):
    """Defect 4 (tools/test.py): an empty or mismatched checkpoint was
    evaluated on random weights with exit 0."""
    state = torch.load(trained / 'iter_2.pth', map_location='cpu',
                       weights_only=True)['state_dict']
    no_head = tmp_path / 'no_head.pth'
    torch.save({k: v for k, v in state.items()
                if not k.startswith('decode_head.')}, no_head)
    other = tmp_path / 'other_classes.pth'
    torch.save(dict(state_dict={
        k: (v[:5] if k.startswith('decode_head.conv_seg.') else v)
        for k, v in state.items()}), other)
    for ckpt, needle in ((no_head, 'decode_head.* (all'),
                         (other, 'decode_head.* (2 shape-mismatched)')):
        with pytest.raises(RuntimeError) as exc:
            _test(ckpt, tmp_path, tiles)
        line = last_line(exc.value)
        assert needle in line and line.endswith(str(ckpt))
        assert '--allow-partial' in line
    metrics = _test(other, tmp_path, tiles, '--allow-partial')
    assert 'mIoU' in metrics


def test_test_tool_loads_a_bare_state_dict(trained, tiles, tmp_path):
    """A state dict without ``meta`` (nor a ``state_dict`` key) scores as
    its full checkpoint does."""
    full = trained / 'iter_2.pth'
    bare = tmp_path / 'bare.pth'
    torch.save(torch.load(full, map_location='cpu',
                          weights_only=True)['state_dict'], bare)
    assert _test(bare, tmp_path, tiles) == _test(full, tmp_path, tiles)


@pytest.mark.parametrize('kind', ['missing', 'zero-byte', 'truncated',
                                  'garbage'])
def test_test_tool_bad_checkpoint_files(trained, tiles, tmp_path, kind):
    ckpt = tmp_path / 'bad.pth'
    if kind == 'zero-byte':
        ckpt.write_bytes(b'')
    elif kind == 'truncated':
        ckpt.write_bytes((trained / 'iter_2.pth').read_bytes()[:100000])
    elif kind == 'garbage':
        ckpt.write_bytes(os.urandom(5000))
    with pytest.raises((OSError, RuntimeError)) as exc:
        _test(ckpt, tmp_path, tiles)
    assert last_line(exc.value).endswith(str(ckpt))
    assert not (tmp_path / 'test').exists()
