"""Time of one training step of the S5 Oriented R-CNN (run by hand, not a
test): the plain ViT detector versus the MoE-MDF detector with two datasets.

    python benchmarks/det_step.py [--device cpu|cuda] [--dtype fp32|bf16]
        [--size 1024] [--arch b] [--iters 2] [--warmup 1] [--boxes 30]
        [--models plain moe-1 moe-2] [--threads N]

A step = forward of the detector's losses + backward + grad-norm clip 35 +
AdamW update, on random images with ``--boxes`` random rotated boxes each:

- ``plain``: ``configs/_base_/models/s5_oriented_rcnn_vit.py`` (111.2 M for
  ViT-B), 1 image;
- ``moe-1``: ``configs/_base_/models/s5_moe_oriented_rcnn_vit.py`` (138.3 M),
  1 image of one dataset (the same work as ``plain`` plus the routing);
- ``moe-2``: the MoE model with 1 DIOR-R + 1 DOTA-v2 image (both experts,
  both heads: the smallest two-dataset step).

Prints a markdown row per model: mean seconds per step after ``--warmup``
steps, and the peak memory (CPU: max RSS of the process; CUDA: max
allocated).
"""
import argparse
import resource
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / 'configs' / '_base_' / 'models'
WIDTH = dict(b=768, l=1024, h=1280)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--size', type=int, default=1024)
    p.add_argument('--arch', choices=['b', 'l', 'h'], default='b')
    p.add_argument('--iters', type=int, default=2)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--boxes', type=int, default=30)
    p.add_argument('--models', nargs='+', default=['plain', 'moe-1',
                                                    'moe-2'],
                   choices=['plain', 'moe-1', 'moe-2'])
    p.add_argument('--threads', type=int, default=None)
    return p.parse_args(argv)


def build(kind, arch):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import s5_mm  # noqa: F401
    moe = kind != 'plain'
    cfg = Config.fromfile(str(MODELS_DIR / (
        's5_moe_oriented_rcnn_vit.py' if moe else 's5_oriented_rcnn_vit.py')))
    c = WIDTH[arch]
    cfg.model.backbone.arch = arch
    if moe:
        cfg.model.neck.in_channels = c
        for h in cfg.model.dataset_heads.values():
            h.neck.in_channels = [c] * 4
    else:
        cfg.model.neck[0].in_channels = c
        cfg.model.neck[1].in_channels = [c] * 4
    init_default_scope('mmrotate')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def batch(kind, size, n_boxes, device, seed):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from mmrotate.structures import RotatedBoxes
    g = torch.Generator().manual_seed(seed)
    names = {'plain': ['dior'], 'moe-1': ['dota'],
             'moe-2': ['dior', 'dota']}[kind]
    samples = []
    for name in names:
        s = DetDataSample(metainfo=dict(
            img_shape=(size, size), pad_shape=(size, size),
            ori_shape=(size, size), scale_factor=(1., 1.),
            dataset_name=name))
        xy = torch.rand(n_boxes, 2, generator=g) * (size - 100) + 50
        wh = torch.rand(n_boxes, 2, generator=g) * 80 + 12
        t = (torch.rand(n_boxes, 1, generator=g) - 0.5) * 3.1
        s.gt_instances = InstanceData(
            bboxes=RotatedBoxes(torch.cat([xy, wh, t], 1)),
            labels=torch.randint(0, 18, (n_boxes, ), generator=g)).to(device)
        samples.append(s)
    x = torch.randn(len(names), 3, size, size, generator=g).to(device)
    return x, samples


def step(model, opt, x, samples, dtype):
    with torch.autocast(x.device.type, dtype=torch.bfloat16,
                        enabled=dtype == 'bf16'):
        losses = model.loss(x, samples)
    loss = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
               for k, v in losses.items() if 'loss' in k)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
    opt.step()
    return float(loss)


def run(kind, args):
    device = torch.device(args.device)
    model = build(kind, args.arch).to(device).train()
    n = sum(p.numel() for p in model.parameters()) / 1e6
    opt = torch.optim.AdamW([p for p in model.parameters()
                             if p.requires_grad], lr=1e-4,
                            weight_decay=0.05)
    times = []
    for i in range(args.warmup + args.iters):
        x, samples = batch(kind, args.size, args.boxes, device, i)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step(model, opt, x, samples, args.dtype)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
        print(f'  {kind} step {i}: {time.perf_counter() - t0:.1f} s, '
              f'loss {loss:.3f}', flush=True)
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return n, len(samples), sum(times) / len(times), peak


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for kind in args.models:
        n, imgs, sec, peak = run(kind, args)
        rows.append(f'| {kind} | ViT-{args.arch.upper()} | {n:.1f} | '
                    f'{imgs} | {args.size} | {args.device} {args.dtype} | '
                    f'{sec:.2f} | {peak:.1f} |')
    print('| model | backbone | params (M) | images | size | device | '
          's / step | peak mem (GiB) |')
    print('|---|---|---|---|---|---|---|---|')
    print('\n'.join(rows))
    return rows


if __name__ == '__main__':
    main()
