"""Checkpoint converters: MAE / timm keys and the released S5 key style."""
from collections import OrderedDict

import pytest
import torch
from mmseg.models.backbones import VisionTransformer

import s5_mm  # noqa: F401
from s5_mm.models.utils import compare_keys, convert_mae, convert_s5_official
from s5_mm.testing import (build_tiny_mdf_segmentor, build_tiny_vit,
                           load_tool, tiny_vit_arch)

load_checkpoint_state = load_tool(
    'model_converters/_common.py').load_checkpoint_state



def randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return module


def test_official_keys_against_mmseg_vit_oracle():
    # MMSeg's VisionTransformer has the mmcv-transformer key style of the
    # released S5 backbone; an independent implementation to match.
    ref = mmseg_vit(0)
    state = {f'encoder.{k}': v for k, v in ref.state_dict().items()}
    assert 'encoder.layers.0.attn.attn.in_proj_weight' in state
    result = convert_s5_official(state)
    assert result.unknown == [] and result.dropped == {}
    ours = build_tiny_vit()
    backbone_state = {
        k[len('backbone.'):]: v
        for k, v in result.state_dict.items()
    }
    ours.load_state_dict(backbone_state, strict=True)
    ours.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(ours(x), ref(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def mdf_model():
    return build_tiny_mdf_segmentor(dict(vaihingen=5, openearthmap=9))


OFFICIAL_EXPERTS = ['openearthmap', 'vaihingen']  # the official run's order
OURS = ['vaihingen', 'openearthmap']  # mdf_model's dataset_names
# released SimpleFPN keys (fpn1.1 is a LayerNorm wrapper) -> ours
NECK = {
    'encoder.fpn1.0.weight': 'neck.fpn1.0.weight',
    'encoder.fpn1.0.bias': 'neck.fpn1.0.bias',
    'encoder.fpn1.1.ln.weight': 'neck.fpn1.1.weight',
    'encoder.fpn1.1.ln.bias': 'neck.fpn1.1.bias',
    'encoder.fpn1.3.weight': 'neck.fpn1.3.weight',
    'encoder.fpn1.3.bias': 'neck.fpn1.3.bias',
    'encoder.fpn2.0.weight': 'neck.fpn2.0.weight',
    'encoder.fpn2.0.bias': 'neck.fpn2.0.bias',
}
# released decoder / classifier names of each dataset -> our head
DECODERS = {'semsegdecoder': 'vaihingen',
            'semsegdecoder_OpenEarthMap': 'openearthmap'}
HEADS = {'semseghead_vaihingen': ('vaihingen', 5),
         'semseghead_OpenEarthMap': ('openearthmap', 9)}


def mmseg_vit(seed):
    """MMSeg's VisionTransformer, the mmcv-transformer key style of the
    released S5 encoder, with the tiny arch and random weights."""
    vit = randomize(
        VisionTransformer(img_size=32,
                          patch_size=4,
                          embed_dims=32,
                          num_layers=2,
                          num_heads=2,
                          out_indices=(0, 1),
                          with_cls_token=False,
                          final_norm=False,
                          patch_bias=True,
                          interpolate_mode='bicubic'), seed)
    vit.eval()  # (MMSeg's ViT.train() returns None: no chaining)
    return vit


def official_moe_state(seed=1, width=8):
    """A released-style MoE MDF checkpoint made without our converter or
    model: the encoder of :func:`mmseg_vit` whose FFN output rows split into
    a shared part and one ``width``-row expert per dataset (each dataset's
    expert a fresh random one), the neck / decoder / classifier names of the
    released files (decoders: MMSeg's UPerHead with its 1-class placeholder
    classifier). Returns (state, {dataset: MMSeg ViT with that dataset's
    FFN output = [shared; expert]})."""
    from mmseg.registry import MODELS
    from s5_mm.testing import tiny_uper_head_cfg
    g = torch.Generator().manual_seed(seed + 100)
    vit = mmseg_vit(seed)
    state = OrderedDict(
        (f'encoder.{k}', v) for k, v in vit.state_dict().items()
        if '.ffn.layers.1.' not in k)
    refs = {}
    for name in OFFICIAL_EXPERTS:
        refs[name] = mmseg_vit(seed)
    for n, layer in enumerate(vit.layers):
        fc2 = layer.ffn.layers[1]
        shared_w, shared_b = fc2.weight[:-width], fc2.bias[:-width]
        state[f'encoder.layers.{n}.ffn.layers.1.weight'] = shared_w.clone()
        state[f'encoder.layers.{n}.ffn.layers.1.bias'] = shared_b.clone()
        for k, name in enumerate(OFFICIAL_EXPERTS):
            w = torch.randn(width, fc2.in_features, generator=g) * 0.2
            b = torch.randn(width, generator=g) * 0.1
            state[f'encoder.layers.{n}.ffn.experts.{k}.weight'] = w
            state[f'encoder.layers.{n}.ffn.experts.{k}.bias'] = b
            with torch.no_grad():
                ref_fc2 = refs[name].layers[n].ffn.layers[1]
                ref_fc2.weight.copy_(torch.cat([shared_w, w]))
                ref_fc2.bias.copy_(torch.cat([shared_b, b]))
    shapes = mdf_model().state_dict()
    for k, ours in NECK.items():
        state[k] = torch.randn(shapes[ours].shape, generator=g)
    for dec in DECODERS:
        head = MODELS.build(tiny_uper_head_cfg(1))
        randomize(head, seed + len(dec))
        for k, v in head.state_dict().items():
            state[f'{dec}.decode_head.{k}'] = v
    for head, (_, n_cls) in HEADS.items():
        state[f'{head}.1.weight'] = torch.randn(n_cls, 16, 1, 1, generator=g)
        state[f'{head}.1.bias'] = torch.randn(n_cls, generator=g)
    return state, refs


def assert_official_placed(official, converted):
    """Each released tensor at the key it must have in s5_mm (names written
    out here, not derived from the converter), and the converted MoE
    backbone routed to a dataset computes MMSeg's ViT with that dataset's
    expert."""
    def same(src, dst):
        assert torch.equal(converted[dst], official[src]), (src, dst)

    for n in range(2):
        e, b = f'encoder.layers.{n}.', f'backbone.blocks.{n}.'
        same(e + 'ln1.weight', b + 'norm1.weight')
        same(e + 'ln2.bias', b + 'norm2.bias')
        same(e + 'attn.attn.in_proj_weight', b + 'attn.qkv.weight')
        same(e + 'attn.attn.out_proj.bias', b + 'attn.proj.bias')
        same(e + 'ffn.layers.0.0.weight', b + 'mlp.fc1.weight')
        same(e + 'ffn.layers.1.weight', b + 'mlp.fc2_shared.weight')
        # official expert 0 is OpenEarthMap: our expert 1
        same(e + 'ffn.experts.0.weight', b + 'mlp.experts.1.weight')
        same(e + 'ffn.experts.1.bias', b + 'mlp.experts.0.bias')
    same('encoder.patch_embed.projection.weight',
         'backbone.patch_embed.proj.weight')
    for src, dst in NECK.items():
        same(src, dst)
    for dec, name in DECODERS.items():
        for k in official:
            if k.startswith(f'{dec}.decode_head.') and '.conv_seg.' not in k:
                same(k, f'decode_head.{name}.' + k.split('.decode_head.')[1])
    for head, (name, _) in HEADS.items():
        same(f'{head}.1.weight', f'decode_head.{name}.conv_seg.weight')
        same(f'{head}.1.bias', f'decode_head.{name}.conv_seg.bias')


def assert_backbone_computes_official(model, refs):
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        for name, ref in refs.items():
            ids = torch.full((2, ), OURS.index(name))
            for a, b in zip(model.backbone(x, ids)[:2], ref(x)):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_official_moe_mdf_from_released_layout():
    state, refs = official_moe_state()
    state['encoder.layers.0.ffn.gamma2.weight'] = torch.ones(32)
    state['encoder.ln1.weight'] = torch.ones(32)
    result = convert_s5_official(
        state,
        expert_names=OFFICIAL_EXPERTS,
        target_expert_names=OURS)
    assert result.unknown == ['encoder.layers.0.ffn.gamma2.weight']
    assert set(result.dropped) == {
        'encoder.ln1.weight', 'semsegdecoder.decode_head.conv_seg.weight',
        'semsegdecoder.decode_head.conv_seg.bias',
        'semsegdecoder_OpenEarthMap.decode_head.conv_seg.weight',
        'semsegdecoder_OpenEarthMap.decode_head.conv_seg.bias'
    }
    target = mdf_model()
    missing, unexpected, mismatched = compare_keys(result.state_dict,
                                                   target.state_dict())
    assert (missing, unexpected, mismatched) == ([], [], [])
    target.load_state_dict(result.state_dict, strict=True)
    assert_official_placed(state, target.state_dict())
    assert_backbone_computes_official(target, refs)


def test_official_single_dataset_decoder():
    state = {
        'semsegdecoder.decode_head.bottleneck.conv.weight': torch.ones(1),
        'semseghead.1.weight': torch.ones(2),
        'encoder.layers.0.ln1.weight': torch.ones(3)
    }
    out = convert_s5_official(state).state_dict
    assert set(out) == {
        'decode_head.bottleneck.conv.weight', 'decode_head.conv_seg.weight',
        'backbone.blocks.0.norm1.weight'
    }


def mae_state(model, grid=2):
    state = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    state['pos_embed'] = torch.randn(1, 1 + grid * grid, 32)
    state['norm.weight'] = torch.ones(32)
    state['decoder_embed.weight'] = torch.ones(4, 32)
    state['mask_token'] = torch.zeros(1, 1, 32)
    state['blocks.0.attn.q_bias'] = torch.zeros(32)
    return state


def test_mae_conversion():
    src = randomize(build_tiny_vit(), seed=2)
    state = mae_state(src)
    result = convert_mae(state, grid_size=(8, 8), prefix='backbone.')
    assert result.unknown == ['blocks.0.attn.q_bias']
    assert set(result.dropped) == {
        'norm.weight', 'decoder_embed.weight', 'mask_token'
    }
    assert result.state_dict['backbone.pos_embed'].shape == (1, 64, 32)
    # without a grid the class slot is dropped and the grid kept; S5ViT
    # resizes it on load
    plain = convert_mae(state).state_dict
    assert plain['pos_embed'].shape == (1, 4, 32)
    dst = build_tiny_vit()
    dst.load_state_dict(plain, strict=True)
    torch.testing.assert_close(dst.pos_embed,
                               result.state_dict['backbone.pos_embed'])
    torch.testing.assert_close(dst.blocks[1].mlp.fc2.weight,
                               src.blocks[1].mlp.fc2.weight)


def test_mae_cli_and_config_check(tmp_path, capsys):
    mae2s5mm = load_tool('model_converters/mae2s5mm.py')
    src = randomize(build_tiny_vit(), seed=3)
    path = tmp_path / 'mae.pth'
    torch.save({'model': mae_state(src), 'epoch': 1599}, path)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "model = dict(type='EncoderDecoder', backbone=dict(type='S5ViT', "
        f"arch={tiny_vit_arch(out_indices=(0, 1, 1, 1))!r}, img_size=32, "
        "patch_size=4), neck=dict(type='SimpleFeaturePyramid', "
        "in_channels=32), decode_head=dict(type='FCNHead', in_channels=32, "
        "channels=8, num_convs=1, num_classes=3))\n")
    mae2s5mm.main([
        str(path),
        str(tmp_path / 'out.pth'), '--img-size', '32', '--patch-size', '4',
        '--config',
        str(cfg)
    ])
    printed = capsys.readouterr().out
    assert 'UNKNOWN source keys' in printed
    assert 'blocks.0.attn.q_bias' in printed
    assert 'all 28 model keys present' in printed  # 2 + 2 + 2 blocks x 12
    assert 'comparing with the model backbone' in printed
    converted = load_checkpoint_state(str(tmp_path / 'out.pth'))
    assert converted['pos_embed'].shape == (1, 64, 32)
    with pytest.raises(SystemExit, match='conversion incomplete'):
        mae2s5mm.main([str(path), str(tmp_path / 'x.pth'), '--strict'])
    assert not (tmp_path / 'x.pth').exists()


def test_s5official_cli(tmp_path, capsys):
    s5official2s5mm = load_tool('model_converters/s5official2s5mm.py')
    state, refs = official_moe_state(seed=4)
    path = tmp_path / 'official.pth'
    torch.save({'model': {f'module.{k}': v for k, v in state.items()}}, path)
    out = tmp_path / 'ours.pth'
    s5official2s5mm.main([str(path), str(out), '--strict', '--expert-names',
                          ','.join(OFFICIAL_EXPERTS),
                          '--target-expert-names', ','.join(OURS)])
    target = mdf_model()
    target.load_state_dict(load_checkpoint_state(str(out)), strict=True)
    assert_official_placed(state, target.state_dict())
    assert_backbone_computes_official(target, refs)
    printed = capsys.readouterr().out
    assert 'dropped by design (4)' in printed
    # the released models upsample with align_corners=True
    assert 'model.test_cfg.align_corners=True' in printed


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        load_checkpoint_state(str(tmp_path / 'missing.pth'))
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(RuntimeError, match='cannot read checkpoint'):
        load_checkpoint_state(str(bad))


def mdf_model_16(test_cfg):
    """The tiny MoE-MDF segmentor with 16 px patches: its decoder predicts
    at a quarter of the input size (as the released models), so the
    logits are upsampled 4x."""
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope
    from s5_mm.registry import MODELS
    from s5_mm.testing import tiny_mdf_segmentor_cfg
    cfg = tiny_mdf_segmentor_cfg(dict(vaihingen=5, openearthmap=9))
    cfg['backbone'].update(patch_size=16, img_size=64)
    cfg['test_cfg'] = test_cfg
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(ConfigDict(cfg)).eval()


def test_official_upsampling_option():
    """With test_cfg.align_corners=True the upsampled logits are the
    official forward's, F.interpolate(decoder logits, input size, bilinear,
    align_corners=True); with MMSeg's default they differ. Per dataset
    through test_cfg.datasets (the converter's printed setting:
    test_s5official_cli)."""
    import torch.nn.functional as F
    from mmseg.structures import SegDataSample
    src = randomize(mdf_model_16(dict(mode='whole')), seed=5)
    # the weights as converted (the conversion itself: the tests above)
    state = src.state_dict()
    x = torch.randn(2, 3, 64, 64)
    names = ['openearthmap', 'vaihingen']

    def samples():
        meta = dict(img_shape=(64, 64), pad_shape=(64, 64),
                    ori_shape=(64, 64))
        return [SegDataSample(metainfo=dict(meta, dataset_name=n))
                for n in names]

    with torch.no_grad():
        # the official decoders' logits (same weights), at 16 x 16; one
        # sample per dataset
        decoder = src._forward(x, samples())
        assert decoder['vaihingen'].shape[-2:] == (16, 16)
        official = {n: F.interpolate(v, size=(64, 64), mode='bilinear',
                                     align_corners=True)[0]
                    for n, v in decoder.items()}

        def logits(test_cfg):
            model = mdf_model_16(test_cfg)
            model.load_state_dict(state, strict=True)
            return [s.seg_logits.data
                    for s in model.predict(x, samples())]

        ours = logits(dict(mode='whole', align_corners=True))
        default = logits(dict(mode='whole'))
        per_dataset = logits(dict(mode='whole', datasets=dict(
            vaihingen=dict(align_corners=True))))
    for i, name in enumerate(names):
        torch.testing.assert_close(ours[i], official[name], rtol=0,
                                   atol=1e-6)
        assert (default[i] - official[name]).abs().max() > 1e-4
    torch.testing.assert_close(per_dataset[1], official['vaihingen'],
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(per_dataset[0], default[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match='align_corners must be None, True'):
        mdf_model_16(dict(mode='whole', align_corners='yes'))
