"""Convert third-party ViT checkpoints to s5_mm key names.

Two sources (the CLIs are ``tools/model_converters/mae2s5mm.py`` and
``tools/model_converters/s5official2s5mm.py``):

* :func:`convert_mae` - MAE / timm ViT (``blocks.N.attn.qkv``, ``mlp.fc1``,
  ``norm1``, ``patch_embed.proj``, ``pos_embed`` with or without a class
  token) -> S5ViT keys.
* :func:`convert_s5_official` - the released S5 models (mmcv-transformer
  keys under ``encoder.``, ``fpn1..fpn4`` inside the encoder, UperNet
  decoders ``semsegdecoder*`` and classifiers ``semseghead*``) -> segmentor
  keys ``backbone.* / neck.* / decode_head[.<dataset>].*``.

Every source key ends in the output, in ``dropped`` (not needed by design,
with the reason) or in ``unknown`` (no mapping): nothing is lost silently.
Only key mapping lives here; reading files, printing and checking against a
config are the CLIs' (``tools/model_converters/_common.py``).
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor

from .pos_embed import adapt_pos_embed, strip_cls_slot


@dataclass
class ConversionResult:
    """Converted ``state_dict`` plus the source keys not carried over."""
    state_dict: 'OrderedDict[str, Tensor]'
    unknown: List[str] = field(default_factory=list)
    dropped: Dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        lines = [f'converted {len(self.state_dict)} tensors']
        if self.dropped:
            lines.append(f'dropped by design ({len(self.dropped)}):')
            lines += [f'  {k}: {why}' for k, why in self.dropped.items()]
        if self.unknown:
            lines.append(f'UNKNOWN source keys, not converted '
                         f'({len(self.unknown)}):')
            lines += [f'  {k}' for k in self.unknown]
        return '\n'.join(lines)


def compare_keys(
        converted: Mapping[str, Tensor],
        expected: Mapping[str,
                          Tensor]) -> Tuple[List[str], List[str], List[str]]:
    """(missing, unexpected, shape-mismatched) keys of ``converted`` against
    a target model's ``state_dict()``."""
    missing = sorted(
        k for k in expected
        if k not in converted and not k.endswith('num_batches_tracked'))
    unexpected = sorted(k for k in converted if k not in expected)
    mismatched = sorted(
        f'{k}: {tuple(converted[k].shape)} vs {tuple(expected[k].shape)}'
        for k in converted if k in expected
        and tuple(converted[k].shape) != tuple(expected[k].shape))
    return missing, unexpected, mismatched


def unwrap_state_dict(ckpt: Mapping, source: str = 'checkpoint'
                      ) -> 'OrderedDict[str, Tensor]':
    """The flat tensor dict of a loaded checkpoint: unwraps ``state_dict`` /
    ``model`` / ``module`` and strips a ``module.`` prefix; ``source`` (the
    file) names the checkpoint in errors."""
    if not isinstance(ckpt, Mapping):
        raise TypeError(f'{source}: expected a dict checkpoint, got '
                        f'{type(ckpt).__name__}')
    for key in ('state_dict', 'model', 'module'):
        if key in ckpt and isinstance(ckpt[key], Mapping):
            ckpt = ckpt[key]
            break
    state = OrderedDict()
    for k, v in ckpt.items():
        if not isinstance(v, Tensor):
            continue
        state[k[len('module.'):] if k.startswith('module.') else k] = v
    if not state:
        raise ValueError(f'{source}: no tensors found in the checkpoint')
    return state


# --------------------------------------------------------------------- MAE
_MAE_BLOCK = re.compile(r'^blocks\.(\d+)\.(norm1|norm2|attn\.qkv|attn\.proj|'
                        r'mlp\.fc1|mlp\.fc2)\.(weight|bias)$')
_MAE_DROP = (
    (re.compile(r'^(norm|fc_norm)\.'), 'final norm: S5ViT has none'),
    (re.compile(r'^head\.'), 'classification head'),
    (re.compile(r'^(decoder_|mask_token$)'), 'MAE decoder'),
)


def convert_mae(state_dict: Mapping[str, Tensor],
                grid_size: Optional[Sequence[int]] = None,
                prefix: str = '') -> ConversionResult:
    """MAE / timm ViT keys -> S5ViT keys.

    Mapping (``N`` = block index)::

        patch_embed.proj.{weight,bias}      -> patch_embed.proj.*
        cls_token                           -> cls_token
        pos_embed (1, [1+]s*s, C)           -> pos_embed (1, s*s, C),
                                               resized to grid_size if given
        blocks.N.norm1 / norm2              -> blocks.N.norm1 / norm2
        blocks.N.attn.qkv / attn.proj       -> blocks.N.attn.qkv / attn.proj
        blocks.N.mlp.fc1 / mlp.fc2          -> blocks.N.mlp.fc1 / mlp.fc2
        norm.*, fc_norm.*, head.*, decoder_*, mask_token -> dropped

    ``prefix`` is prepended to every output key (e.g. ``'backbone.'``).
    Anything else is reported in ``unknown``.
    """
    out = ConversionResult(OrderedDict())
    for key, value in state_dict.items():
        new = None
        if key in ('patch_embed.proj.weight', 'patch_embed.proj.bias',
                   'cls_token'):
            new = key
        elif key == 'pos_embed':
            value = (strip_cls_slot(value, key) if grid_size is None else
                     adapt_pos_embed(value, grid_size, key))
            new = key
        elif _MAE_BLOCK.match(key):
            new = key
        else:
            for pattern, why in _MAE_DROP:
                if pattern.search(key):
                    out.dropped[key] = why
                    break
            else:
                out.unknown.append(key)
        if new is not None:
            out.state_dict[prefix + new] = value
    return out


# ------------------------------------------------------------ official S5
_S5_BLOCK_MAP = (
    (re.compile(r'^ln1\.(weight|bias)$'), r'norm1.\1'),
    (re.compile(r'^ln2\.(weight|bias)$'), r'norm2.\1'),
    (re.compile(r'^attn\.attn\.in_proj_(weight|bias)$'), r'attn.qkv.\1'),
    (re.compile(r'^attn\.attn\.out_proj\.(weight|bias)$'), r'attn.proj.\1'),
    (re.compile(r'^ffn\.layers\.0\.0\.(weight|bias)$'), r'mlp.fc1.\1'),
)
_S5_FFN_OUT = re.compile(r'^ffn\.layers\.1\.(weight|bias)$')
_S5_EXPERT = re.compile(r'^ffn\.experts\.(\d+)\.(?:\d+\.)?(weight|bias)$')
_S5_FPN = re.compile(r'^(fpn[1-4])\.(\d+)\.(?:ln\.)?(.+)$')
_S5_DECODER = re.compile(r'^semsegdecoder(?:_(\w+?))?\.decode_head\.(.+)$')
_S5_HEAD = re.compile(r'^semseghead(?:_(\w+?))?\.(\d+)\.(weight|bias)$')
_S5_ENCODER_KEYS = {
    'patch_embed.projection.weight': 'backbone.patch_embed.proj.weight',
    'patch_embed.projection.bias': 'backbone.patch_embed.proj.bias',
    'cls_token': 'backbone.cls_token',
    'pos_embed': 'backbone.pos_embed',
}
_S5_ENCODER_DROP = re.compile(r'^ln1\.(weight|bias)$')


def convert_s5_official(
        state_dict: Mapping[str, Tensor],
        expert_names: Optional[Sequence[str]] = None,
        target_expert_names: Optional[Sequence[str]] = None,
        name_map: Optional[Mapping[str, str]] = None,
        unsuffixed_decoder: str = 'vaihingen') -> ConversionResult:
    """Released S5 checkpoint keys -> s5_mm segmentor keys.

    Mapping (``E.`` = the encoder prefix found in the file, e.g.
    ``encoder.``, ``backbone.`` or none; ``N`` = block; ``K`` = expert)::

        E.patch_embed.projection.*          -> backbone.patch_embed.proj.*
        E.cls_token / E.pos_embed           -> backbone.cls_token / pos_embed
                                               (a class-token slot is dropped)
        E.layers.N.ln1 / ln2                -> backbone.blocks.N.norm1 / norm2
        E.layers.N.attn.attn.in_proj_{weight,bias}
                                            -> backbone.blocks.N.attn.qkv.*
        E.layers.N.attn.attn.out_proj.*     -> backbone.blocks.N.attn.proj.*
        E.layers.N.ffn.layers.0.0.*         -> backbone.blocks.N.mlp.fc1.*
        E.layers.N.ffn.layers.1.*           -> backbone.blocks.N.mlp.fc2.*
                                               (mlp.fc2_shared.* with experts)
        E.layers.N.ffn.experts.K.*          -> backbone.blocks.N.mlp
                                               .experts.K'.*
        E.fpn1.{0,3}.*                      -> neck.fpn1.{0,3}.*
        E.fpn1.1.ln.*                       -> neck.fpn1.1.*
        E.fpn2.0.*                          -> neck.fpn2.0.*
        semsegdecoder[_X].decode_head.*     -> decode_head[.x].*
        semsegdecoder[_X].decode_head.conv_seg.* -> dropped (the official
                                               1-class placeholder classifier)
        semseghead[_X].1.{weight,bias}      -> decode_head[.x].conv_seg.*

    A single-dataset checkpoint (``semsegdecoder`` + ``semseghead``) maps to
    a plain ``decode_head``. A multi-dataset one maps each ``_X`` suffix to
    the dataset name ``name_map.get(X, X.lower())``; the unsuffixed
    ``semsegdecoder`` is the decoder of ``unsuffixed_decoder`` (the official
    code pairs it with ``semseghead_vaihingen``).

    Experts: official expert ``K`` belongs to ``expert_names[K]`` (the
    ``--tasks`` order of the official run); it becomes expert
    ``target_expert_names.index(expert_names[K])``. Without the two lists,
    ``K' = K``.
    """
    name_map = dict(name_map or {})
    out = ConversionResult(OrderedDict())
    enc = _find_encoder_prefix(state_dict)
    expert_perm = _expert_permutation(expert_names, target_expert_names)
    multi = any(
        _S5_DECODER.match(k) and _S5_DECODER.match(k).group(1)
        for k in state_dict) or any(
            _S5_HEAD.match(k) and _S5_HEAD.match(k).group(1)
            for k in state_dict)
    moe_blocks = {
        m.group(1)
        for k in state_dict
        for m in
        [re.match(re.escape(enc or '') + r'layers\.(\d+)\.ffn\.'
                  r'experts\.', k)] if m
    }

    def dataset(suffix: Optional[str]) -> str:
        if not multi:
            return ''
        name = unsuffixed_decoder if suffix is None else name_map.get(
            suffix, suffix.lower())
        return name + '.'

    for key, value in state_dict.items():
        new = None
        if enc is not None and key.startswith(enc) and not _S5_DECODER.match(
                key) and not _S5_HEAD.match(key):
            rest = key[len(enc):]
            new = _map_encoder_key(rest, moe_blocks, expert_perm, key)
            if new is None:
                if _S5_ENCODER_DROP.match(rest):
                    out.dropped[key] = ('final norm: S5ViT has none '
                                        '(final_norm=False)')
                else:
                    out.unknown.append(key)
            elif new == 'backbone.pos_embed':
                value = strip_cls_slot(value, key)
        else:
            m = _S5_DECODER.match(key)
            h = _S5_HEAD.match(key)
            if m:
                rest = m.group(2)
                if rest.startswith('conv_seg.'):
                    out.dropped[key] = ('unused 1-class classifier of the '
                                        'official decoder (its classifier is '
                                        'semseghead*)')
                else:
                    new = f'decode_head.{dataset(m.group(1))}{rest}'
            elif h:
                new = f'decode_head.{dataset(h.group(1))}conv_seg.{h.group(3)}'
            else:
                out.unknown.append(key)
        if new is not None:
            if new in out.state_dict:
                raise KeyError(f'{key}: two source keys map to {new}')
            out.state_dict[new] = value
    return out


def _find_encoder_prefix(state_dict: Mapping[str, Tensor]) -> Optional[str]:
    for key in state_dict:
        m = re.match(r'^(.*?)layers\.\d+\.ln1\.weight$', key)
        if m:
            return m.group(1)
    for key in state_dict:
        m = re.match(r'^(.*?)patch_embed\.projection\.weight$', key)
        if m:
            return m.group(1)
    return None


def _expert_permutation(src: Optional[Sequence[str]],
                        dst: Optional[Sequence[str]]) -> Optional[List[int]]:
    if src is None and dst is None:
        return None
    if src is None or dst is None:
        raise ValueError('give both expert_names (official order) and '
                         'target_expert_names (our order), or neither')
    src, dst = list(src), list(dst)
    missing = [n for n in src if n not in dst]
    if missing or len(src) != len(dst):
        raise ValueError(f'expert names {src} do not match the target '
                         f'dataset_names {dst}')
    return [dst.index(n) for n in src]


def _map_encoder_key(rest: str, moe_blocks: Iterable[str],
                     expert_perm: Optional[List[int]],
                     key: str) -> Optional[str]:
    """Target key of encoder key ``rest`` (``key`` without the encoder
    prefix), or None when it has no mapping."""
    if rest in _S5_ENCODER_KEYS:
        return _S5_ENCODER_KEYS[rest]
    m = re.match(r'^layers\.(\d+)\.(.+)$', rest)
    if m:
        n, sub = m.groups()
        for pattern, repl in _S5_BLOCK_MAP:
            if pattern.match(sub):
                return f'backbone.blocks.{n}.' + pattern.sub(repl, sub)
        f = _S5_FFN_OUT.match(sub)
        if f:
            fc2 = 'fc2_shared' if n in moe_blocks else 'fc2'
            return f'backbone.blocks.{n}.mlp.{fc2}.{f.group(1)}'
        e = _S5_EXPERT.match(sub)
        if e:
            k = int(e.group(1))
            if expert_perm is not None:
                if k >= len(expert_perm):
                    raise ValueError(f'{key}: expert {k} but only '
                                     f'{len(expert_perm)} expert names given')
                k = expert_perm[k]
            return f'backbone.blocks.{n}.mlp.experts.{k}.{e.group(2)}'
    m = _S5_FPN.match(rest)
    if m:
        return f'neck.{m.group(1)}.{m.group(2)}.{m.group(3)}'
    return None
