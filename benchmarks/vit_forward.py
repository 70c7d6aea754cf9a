"""Forward + backward time and peak memory of the S5 ViT backbone versus
MMSeg's ``VisionTransformer`` at the same size (run by hand, not a test).

    python benchmarks/vit_forward.py [--device cpu|cuda] [--dtype fp32|bf16]
        [--iters 3] [--warmup 1] [--batch 4] [--size 512] [--arch b]
        [--with-cp] [--moe]

Both backbones: ViT-B (768 / 12 blocks / 12 heads), patch 16, outputs of
blocks 3, 5, 7, 11, drop-path 0.1, no class token in the blocks, no final
norm, train mode. The loss is the mean of the four outputs. ``--dtype bf16``
runs under autocast (mixed precision, as in training). ``--moe`` also times
S5ViT with 4 experts (p = 256) on a single-dataset batch. Prints markdown
table rows; the speed-up is MMSeg time / ours.

Each model runs in its own (spawned) process. Peak memory: CUDA max
allocated, or on CPU the peak resident set size (Linux /proc), above the
level after building the model, over warm-up and timed steps.
"""
import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--arch', choices=['b', 'l', 'h'], default='b')
    p.add_argument('--with-cp', action='store_true',
                   help='activation checkpointing in both models')
    p.add_argument('--moe', action='store_true',
                   help='also time S5ViT with 4 experts (p = 256)')
    return p.parse_args(argv)


def build_models(args):
    from mmseg.models.backbones import VisionTransformer

    from s5_mm.models.backbones import S5ViT
    from s5_mm.models.backbones.vit import ARCH_SETTINGS
    a = ARCH_SETTINGS[args.arch]
    common = dict(img_size=args.size, patch_size=16, drop_path_rate=0.1,
                  with_cp=args.with_cp)
    models = {
        'S5ViT (ours)':
        lambda: S5ViT(arch=args.arch, **common),
        'mmseg VisionTransformer':
        lambda: VisionTransformer(
            embed_dims=a['embed_dims'], num_layers=a['num_layers'],
            num_heads=a['num_heads'], mlp_ratio=4,
            out_indices=a['out_indices'], qkv_bias=True, with_cls_token=False,
            final_norm=False, patch_bias=True,
            norm_cfg=dict(type='LN', eps=1e-5),
            interpolate_mode='bicubic', **common),
    }
    if args.moe:
        models['S5ViT MoE 4x256 (one dataset)'] = lambda: S5ViT(
            arch=args.arch, num_experts=4, expert_width=256, **common)
    return models


def _rss_kib(field):
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def measure(name, args):
    make_model = build_models(args)[name]
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = make_model().to(device)
    model.train()  # (MMSeg's ViT.train() returns None: no chaining)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    ids = torch.zeros(args.batch, dtype=torch.long, device=device)
    takes_ids = getattr(model, 'num_experts', 0) > 0
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=args.dtype == 'bf16')

    def step():
        with autocast:
            outs = model(x, ids) if takes_ids else model(x)
            loss = sum(o.float().mean() for o in outs)
        loss.backward()
        model.zero_grad(set_to_none=True)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize()

    # Peak over warm-up and timed steps, above the model + input baseline
    # (on CPU, freed memory stays resident, so the baseline is taken first).
    sync()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        Path('/proc/self/clear_refs').write_text('5')  # reset peak RSS
        base = _rss_kib('VmRSS') * 1024
    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    sync()
    seconds = (time.perf_counter() - start) / args.iters
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _rss_kib('VmHWM') * 1024 - base
    return seconds, peak / 2**20


def _child(name, args, queue):
    queue.put(measure(name, args))


def measure_in_subprocess(name, args):
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda requested but CUDA is not available')
    device_name = (torch.cuda.get_device_name() if args.device == 'cuda' else
                   f'cpu ({torch.get_num_threads()} threads)')
    results = {}
    for name in build_models(args):
        results[name] = measure_in_subprocess(name, args)
        print(f'# {name}: {results[name][0] * 1e3:.1f} ms/iter, '
              f'peak {results[name][1]:.0f} MiB', flush=True)
    ref = results['mmseg VisionTransformer'][0]
    print(f'\n| device | dtype | ViT-{args.arch.upper()} input | model | '
          'fwd+bwd (ms/iter) | peak mem (MiB) | speed-up vs mmseg |')
    print('|---|---|---|---|---|---|---|')
    for name, (sec, mem) in results.items():
        print(f'| {device_name} | {args.dtype} | {args.batch}x3x{args.size}x'
              f'{args.size}{" cp" if args.with_cp else ""} | {name} | '
              f'{sec * 1e3:.1f} | {mem:.0f} | {ref / sec:.2f}x |')


if __name__ == '__main__':
    main()
