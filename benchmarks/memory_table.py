"""Training memory per GPU of S4P ViT-B/L/H (12 labelled + 12 unlabelled
images of 512 per GPU), computed from the real configs on the meta device
(no real memory is used), with and without FSDP full sharding.

    python benchmarks/memory_table.py [--archs b l h] [--gpus 8]
        [--labelled 12] [--unlabelled 12] [--size 512] [--out FILE]

Per configuration (arch x fp32 / bf16 x activation checkpointing x no
sharding / FSDP over ``--gpus``):

- weights: every student parameter, fp32 (4 B; with bf16 mixed precision
  these are the fp32 master weights). The 'self' teacher is the student:
  no extra copy.
- bf16 / gathered: without sharding and bf16, the bf16 copy of each weight
  the autocast cache holds through forward and backward (2 B x params);
  with FSDP, the unsharded parameters of the root unit (patch / position
  embedding, neck, UperNet: gathered for the whole step) plus two ViT-block
  units (the one computing and the prefetched one), in the compute dtype.
- grads: fp32 (4 B x trainable parameters).
- AdamW: exp_avg + exp_avg_sq, fp32 (8 B x trainable parameters).
- activations: bytes of the tensors autograd saves for backward in the
  student's training pass (``torch.autograd.graph.saved_tensors_hooks``,
  each storage counted once, parameters excluded), on 12 labelled + 12
  CutMix-ed strong images in one pass, with the pseudo-labels of the
  teacher's no-grad pass on the 12 weak views (which saves nothing);
  attention saves what the GPU's fused kernels save (no N x N matrix). With
  activation checkpointing: what stays saved (block inputs, features,
  head) plus the largest block's activations, recomputed in its backward.
  Sharding does not divide activations. bf16: the model computes in bf16
  (as FSDP mixed precision casts it); the S4P code's explicit fp32 casts
  (softmax of the pseudo-labels, CE of the unsupervised loss) stay fp32.

Sharding divides weights, grads and AdamW state by ``--gpus``. Not counted:
the allocator's fragmentation and cache, kernel workspaces, the transient
tensors of one op (e.g. the teacher pass's largest feature map), the data
loader; so a measured peak is higher.
"""
import argparse
import contextlib
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--archs', nargs='+', default=['b', 'l', 'h'],
                   choices=['b', 'l', 'h'])
    p.add_argument('--gpus', type=int, default=8)
    p.add_argument('--labelled', type=int, default=12)
    p.add_argument('--unlabelled', type=int, default=12)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--out', help='also write the markdown table here')
    return p.parse_args(argv)


# ------------------------------------------------------------ the model
def s4p_model_cfg(arch):
    """The S4P config's model (configs/s4p/vit-{arch}_rs4p1m.py), random
    init, BN for SyncBN (no meta / CPU forward; same sizes), the CE
    averaged over all pixels (``avg_non_ignore`` counts them with
    ``.item()``, which meta tensors cannot; same saved tensors)."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO / f'configs/s4p/vit-{arch}_rs4p1m.py'))
    seg = cfg.model.segmentor
    seg.backbone.init_cfg = None
    seg.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    seg.decode_head.loss_decode.avg_non_ignore = False
    return cfg.model


def build_meta(model_cfg, with_cp=None, dtype=torch.float32):
    """The model on the meta device, in train mode."""
    import copy

    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401
    from s5_mm.registry import MODELS
    init_default_scope('mmseg')
    cfg = copy.deepcopy(model_cfg)
    if with_cp is not None:
        cfg.segmentor.backbone.with_cp = with_cp
    with torch.device('meta'):
        model = MODELS.build(cfg)
    return model.to(dtype).train()


def s4p_batch(n_lab, n_unl, size, dtype, device='meta'):
    """Multi-branch inputs and data samples (labels, padding masks)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    shape = (size, size)

    def samples(n):
        out = []
        for _ in range(n):
            s = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                            pad_shape=shape))
            s.gt_sem_seg = PixelData(data=torch.zeros(
                1, *shape, dtype=torch.long, device=device))
            out.append(s)
        return out

    def images(n):
        return torch.zeros(n, 3, *shape, dtype=dtype, device=device)

    inputs = dict(sup=images(n_lab), unsup_teacher=images(n_unl),
                  unsup_student=images(n_unl))
    return inputs, dict(sup=samples(n_lab), unsup_teacher=samples(n_unl),
                        unsup_student=samples(n_unl))


@contextlib.contextmanager
def meta_safe_accuracy():
    """MMSeg's accuracy metric indexes by a data-dependent mask, which the
    meta device cannot; it runs without grad (saves nothing): stub it."""
    from mmseg.models.decode_heads import decode_head
    orig = decode_head.accuracy
    decode_head.accuracy = lambda pred, target, **kw: pred.new_zeros(())
    try:
        yield
    finally:
        decode_head.accuracy = orig


@contextlib.contextmanager
def fused_attention():
    """``F.scaled_dot_product_attention`` as the GPU's fused kernel
    (memory-efficient attention: saves q, k, v, output and log-sum-exp). On
    the meta device it would take the math path, which saves the N x N
    attention matrix (1.2 GB per ViT-B block here) that no GPU run keeps."""
    import torch.nn.functional as F
    orig = F.scaled_dot_product_attention

    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False,
             scale=None, **kwargs):
        if attn_mask is not None or kwargs:
            return orig(q, k, v, attn_mask, dropout_p, is_causal,
                        scale=scale, **kwargs)
        return torch.ops.aten._scaled_dot_product_efficient_attention(
            q, k, v, None, True, dropout_p, is_causal, scale=scale)[0]

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = orig


def _storage_key(t):
    return t.untyped_storage()._cdata


class SavedTensorMeter:
    """Bytes autograd saves for backward under this context, one count per
    storage, parameters excluded; with ``blocks``, also per block (forward
    hooks) and the inputs a checkpointed block keeps (which autograd's own
    hooks of ``torch.utils.checkpoint`` hide from ours)."""

    def __init__(self, model, blocks=(), checkpointed=False):
        self.exclude = {_storage_key(p) for p in model.parameters()}
        self.seen = {}
        self.blocks = list(blocks)
        self.checkpointed = checkpointed
        self.per_block = []
        self._handles = []

    @property
    def total(self) -> int:
        return sum(self.seen.values())

    def add(self, t):
        if not isinstance(t, torch.Tensor):
            return
        key = _storage_key(t)
        if key not in self.exclude and key not in self.seen:
            self.seen[key] = t.untyped_storage().nbytes()

    def _pack(self, t):
        self.add(t)
        return t

    def __enter__(self):
        def pre(module, args):
            if module.training and torch.is_grad_enabled():
                module._mem_start = self.total
                if self.checkpointed and args[0].requires_grad:
                    self.add(args[0])  # held by the checkpoint for backward

        def post(module, args, out):
            if hasattr(module, '_mem_start'):
                self.per_block.append(self.total - module._mem_start)
                del module._mem_start

        for b in self.blocks:
            self._handles += [b.register_forward_pre_hook(pre),
                              b.register_forward_hook(post)]
        self._hooks = torch.autograd.graph.saved_tensors_hooks(
            self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)
        for h in self._handles:
            h.remove()


def activation_bytes(model_cfg, n_lab, n_unl, size, dtype, with_cp):
    """(held after the forward, largest block) saved bytes of one S4P
    training pass of the student; the per-block figure is only meaningful
    without checkpointing."""
    model = build_meta(model_cfg, with_cp=with_cp, dtype=dtype)
    inputs, samples = s4p_batch(n_lab, n_unl, size, dtype)
    blocks = list(model.student.backbone.blocks)
    with meta_safe_accuracy(), fused_attention(), SavedTensorMeter(
            model, blocks, checkpointed=with_cp) as meter:
        losses = model.loss(inputs, samples)
    assert losses['unsup_loss_ce'].requires_grad
    # without checkpointing a block's own saved tensors; with it, the
    # recompute saves what the plain block saves
    return meter.total, max(meter.per_block or [0])


def parameter_counts(model_cfg):
    """numel of: all student params, trainable ones, the FSDP root unit
    (everything outside the ViT blocks), the largest block."""
    model = build_meta(model_cfg)
    student = model.student
    total = sum(p.numel() for p in student.parameters())
    trainable = sum(p.numel() for p in student.parameters()
                    if p.requires_grad)
    blocks = [sum(p.numel() for p in b.parameters())
              for b in student.backbone.blocks]
    return dict(total=total, trainable=trainable, root=total - sum(blocks),
                block=max(blocks))


# ------------------------------------------------------------ the table
PRECISIONS = {'fp32': torch.float32, 'bf16': torch.bfloat16}


def memory_rows(model_cfg, name, n_lab, n_unl, size, gpus):
    """One dict per (precision, checkpointing, sharding), bytes."""
    counts = parameter_counts(model_cfg)
    rows = []
    for prec, dtype in PRECISIONS.items():
        cbytes = torch.finfo(dtype).bits // 8
        # the largest block's saved bytes come from the plain pass (inside
        # a checkpoint autograd's hooks are torch.utils.checkpoint's)
        plain, block = activation_bytes(model_cfg, n_lab, n_unl, size, dtype,
                                        with_cp=False)
        for with_cp in (False, True):
            held = plain if not with_cp else activation_bytes(
                model_cfg, n_lab, n_unl, size, dtype, with_cp=True)[0]
            acts = held + (block if with_cp else 0)
            for shards in (1, gpus):
                weights = 4 * counts['total'] / shards
                grads = 4 * counts['trainable'] / shards
                adamw = 8 * counts['trainable'] / shards
                if shards == 1:
                    copies = 2 * counts['total'] if prec == 'bf16' else 0
                else:
                    copies = cbytes * (counts['root'] + 2 * counts['block'])
                rows.append(dict(
                    model=name, precision=prec, with_cp=with_cp,
                    shards=shards, params=counts['total'], weights=weights,
                    copies=copies, grads=grads, adamw=adamw,
                    activations=acts, held=held, block=block,
                    total=weights + copies + grads + adamw + acts))
    return rows


def markdown(rows, gpus):
    def g(x):
        return f'{x / GIB:.2f}'

    lines = [
        '| model (params) | precision | act. ckpt | sharding | weights | '
        'bf16 copy / gathered | grads | AdamW | activations | total |',
        '|---|---|---|---|---|---|---|---|---|---|'
    ]
    for r in rows:
        shard = 'none' if r['shards'] == 1 else f'FSDP x{r["shards"]}'
        lines.append(
            f"| {r['model']} ({r['params'] / 1e6:.1f} M) | {r['precision']} "
            f"| {'yes' if r['with_cp'] else 'no'} | {shard} | "
            f"{g(r['weights'])} | {g(r['copies'])} | {g(r['grads'])} | "
            f"{g(r['adamw'])} | {g(r['activations'])} | "
            f"**{g(r['total'])}** |")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    rows = []
    for arch in args.archs:
        rows += memory_rows(s4p_model_cfg(arch), f'ViT-{arch.upper()}',
                            args.labelled, args.unlabelled, args.size,
                            args.gpus)
    text = (f'GiB per GPU, {args.labelled} + {args.unlabelled} images of '
            f'{args.size} per GPU, AdamW; computed on the meta device '
            '(benchmarks/memory_table.py).\n\n' + markdown(rows, args.gpus))
    print(text)
    if args.out:
        Path(args.out).write_text(text + '\n')
    return rows


if __name__ == '__main__':
    sys.path.insert(0, str(REPO))
    main()
