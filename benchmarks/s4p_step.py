"""Time of one S4P training step: our S4PSegmentor versus a plain PyTorch
FixMatch step (run by hand, not a test).

    python benchmarks/s4p_step.py [--device cpu|cuda] [--dtype fp32|bf16]
        [--batch 2] [--size 512] [--arch b] [--iters 3] [--warmup 1]
        [--with-cp]

A step = pseudo-labels from the weak views (no grad) + student forward and
backward on labelled + strong views + AdamW update, ``--batch`` labelled and
``--batch`` unlabelled images, 16 classes, CutMix p 0.5, tau 0.95.

- ours: ``S4PSegmentor`` around S5ViT + SimpleFeaturePyramid + UperNet
  (configs/_base_/models/s5_upernet_vit.py, BN instead of SyncBN), one
  student pass on labelled + strong, CutMix and masking on the device.
- baseline: a single-file FixMatch step as the official code is written:
  MMSeg ``VisionTransformer`` + ``MultiLevelNeck`` + ``UPerHead`` (the MMSeg
  ViT-UperNet recipe), weak views forwarded in eval mode, separate student
  passes for labelled and strong images, CutMix and masking in plain
  PyTorch with per-sample boxes drawn on the host.

Both run under autocast for ``--dtype bf16``. Prints a markdown table row
per model and the speed-up (baseline time / ours).
"""
import argparse
import copy
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

NUM_CLASSES = 16


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--batch', type=int, default=2,
                   help='labelled images = unlabelled images per step')
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--arch', choices=['b', 'l', 'h'], default='b')
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--with-cp', action='store_true')
    return p.parse_args(argv)


# ---------------------------------------------------------------- ours
def build_ours(args):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401
    from s5_mm.models.segmentors import S4PSegmentor
    init_default_scope('mmseg')
    cfg = Config.fromfile(
        str(ROOT / 'configs/_base_/models/s5_upernet_vit.py'))
    seg = copy.deepcopy(cfg.model.to_dict())
    from s5_mm.models.backbones.vit import ARCH_SETTINGS
    c = ARCH_SETTINGS[args.arch]['embed_dims']
    seg['backbone'].update(arch=args.arch, img_size=args.size,
                           with_cp=args.with_cp)
    seg['neck'].update(in_channels=c)
    seg['decode_head'].update(in_channels=[c] * 4,
                              norm_cfg=dict(type='BN', requires_grad=True))
    seg['data_preprocessor'].update(size=(args.size, args.size))
    return S4PSegmentor(segmentor=seg)


def ours_step(model, optim, batch, ctx):
    inputs, data_samples = batch
    optim.zero_grad(set_to_none=True)
    with ctx():
        losses = model.loss(inputs, data_samples)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    optim.step()
    return loss


def make_ours_batch(args, device):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    b, s = args.batch, args.size

    def samples(labels=None):
        out = []
        for i in range(b):
            ds = SegDataSample(metainfo=dict(img_shape=(s, s),
                                             pad_shape=(s, s),
                                             ori_shape=(s, s)))
            data = labels[i] if labels is not None else torch.zeros(
                s, s, dtype=torch.long, device=device)
            ds.gt_sem_seg = PixelData(data=data[None])
            out.append(ds)
        return out

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, NUM_CLASSES, (b, s, s), generator=g).to(device)
    inputs = dict(
        sup=torch.randn(b, 3, s, s, generator=g).to(device),
        unsup_teacher=torch.randn(b, 3, s, s, generator=g).to(device),
        unsup_student=torch.randn(b, 3, s, s, generator=g).to(device))
    data_samples = dict(sup=samples(labels), unsup_teacher=samples(),
                        unsup_student=samples())
    return inputs, data_samples


# ------------------------------------------------------------ baseline
class PlainViTUperNet(torch.nn.Module):
    """MMSeg ViT + MultiLevelNeck + UPerHead, logits at input size."""

    def __init__(self, args):
        super().__init__()
        from mmseg.models.backbones import VisionTransformer
        from mmseg.models.decode_heads import UPerHead
        from mmseg.models.necks import MultiLevelNeck

        from s5_mm.models.backbones.vit import ARCH_SETTINGS
        a = ARCH_SETTINGS[args.arch]
        c = a['embed_dims']
        self.backbone = VisionTransformer(
            img_size=args.size, patch_size=16, embed_dims=c,
            num_layers=a['num_layers'], num_heads=a['num_heads'],
            mlp_ratio=4, out_indices=a['out_indices'], qkv_bias=True,
            drop_path_rate=0.1, with_cls_token=False, final_norm=False,
            with_cp=args.with_cp)
        self.neck = MultiLevelNeck(in_channels=[c] * 4, out_channels=c,
                                   scales=[4, 2, 1, 0.5])
        self.head = UPerHead(
            in_channels=[c] * 4, in_index=[0, 1, 2, 3],
            pool_scales=(1, 2, 3, 6), channels=256, dropout_ratio=0.1,
            num_classes=NUM_CLASSES,
            norm_cfg=dict(type='BN', requires_grad=True),
            align_corners=False)

    def forward(self, x):
        out = self.head(self.neck(self.backbone(x)))
        return F.interpolate(out, size=x.shape[2:], mode='bilinear',
                             align_corners=False)


def cutmix_box(size, p=0.5):
    """Host-side box as FixMatch code draws it: area 2-40 %, aspect
    0.3-3.3, or an empty box with probability 1 - p."""
    mask = torch.zeros(size, size)
    if random.random() > p:
        return mask
    while True:
        area = random.uniform(0.02, 0.4) * size * size
        ratio = random.uniform(0.3, 1 / 0.3)
        w, h = int((area / ratio)**0.5), int((area * ratio)**0.5)
        x, y = random.randint(0, size), random.randint(0, size)
        if x + w <= size and y + h <= size:
            break
    mask[y:y + h, x:x + w] = 1
    return mask


def baseline_step(model, optim, batch, ctx):
    img_x, mask_x, img_w, img_s, ignore = batch
    b, s = img_w.shape[0], img_w.shape[-1]
    # mixing partner: the batch rolled by one, a different image
    boxes = torch.stack([cutmix_box(s) for _ in range(b)]).to(img_w.device)
    partner = torch.roll(torch.arange(b), 1).to(img_w.device)
    optim.zero_grad(set_to_none=True)
    with ctx():
        model.eval()
        with torch.no_grad():
            pred_w = model(img_w).detach().float().softmax(dim=1)
            conf_w, mask_w = pred_w.max(dim=1)
        model.train()
        img_s = img_s.clone()
        box3 = boxes.unsqueeze(1).expand(img_s.shape) == 1
        img_s[box3] = img_s[partner][box3]
        mask_m, conf_m, ignore_m = mask_w.clone(), conf_w.clone(), \
            ignore.clone()
        box = boxes == 1
        mask_m[box] = mask_w[partner][box]
        conf_m[box] = conf_w[partner][box]
        ignore_m[box] = ignore[partner][box]
        pred_x = model(img_x)
        pred_s = model(img_s)
        loss_x = F.cross_entropy(pred_x.float(), mask_x, ignore_index=255)
        loss_u = F.cross_entropy(pred_s.float(), mask_m, reduction='none')
        loss_u = loss_u * ((conf_m >= 0.95) & (ignore_m != 255))
        loss_u = loss_u.sum() / (ignore_m != 255).sum()
        loss = (loss_x + loss_u) / 2.0
    loss.backward()
    optim.step()
    return loss


def make_baseline_batch(args, device):
    b, s = args.batch, args.size
    g = torch.Generator().manual_seed(0)
    return (torch.randn(b, 3, s, s, generator=g).to(device),
            torch.randint(0, NUM_CLASSES, (b, s, s), generator=g).to(device),
            torch.randn(b, 3, s, s, generator=g).to(device),
            torch.randn(b, 3, s, s, generator=g).to(device),
            torch.zeros(b, s, s, dtype=torch.long, device=device))


# --------------------------------------------------------------- timing
def time_steps(step, model, batch, args, device):
    optim = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=5e-5,
        weight_decay=0.01)
    dtype = torch.bfloat16 if args.dtype == 'bf16' else None

    def ctx():
        if dtype is None:
            return torch.autocast(device_type=device.type, enabled=False)
        return torch.autocast(device_type=device.type, dtype=dtype)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step(model, optim, batch, ctx)
    sync()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        step(model, optim, batch, ctx)
        sync()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() / 2**30
            if device.type == 'cuda' else float('nan'))
    return sorted(times)[len(times) // 2], peak


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    random.seed(0)
    rows = []
    ours = build_ours(args).to(device).train()
    t_ours, m_ours = time_steps(ours_step, ours,
                                make_ours_batch(args, device), args, device)
    del ours
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    base = PlainViTUperNet(args).to(device).train()
    t_base, m_base = time_steps(baseline_step, base,
                                make_baseline_batch(args, device), args,
                                device)
    rows.append(('S4PSegmentor (ours)', t_ours, m_ours))
    rows.append(('plain FixMatch, MMSeg ViT', t_base, m_base))
    print(f'\nS4P step, ViT-{args.arch.upper()} {args.size}px, '
          f'{args.batch}+{args.batch} images, {args.dtype}, {device.type}, '
          f'median of {args.iters} steps')
    print('| model | s / step | peak GPU mem GiB |')
    print('|---|---|---|')
    for name, t, m in rows:
        print(f'| {name} | {t:.3f} | {m:.2f} |')
    print(f'speed-up (baseline / ours): {t_base / t_ours:.2f}x')
    return dict(ours=t_ours, baseline=t_base, speedup=t_base / t_ours)


if __name__ == '__main__':
    main()
