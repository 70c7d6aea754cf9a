"""Time of one MoE-MDF training step against a single-dataset step with the
same total batch (run by hand, not a test).

    python benchmarks/mdf_step.py [--device cpu|cuda] [--dtype fp32|bf16]
        [--per-dataset 2] [--size 512] [--arch b] [--iters 2] [--warmup 1]
    python benchmarks/mdf_step.py --ddp [--size 128] [--iters 5]

A step = forward + backward + AdamW update of ``MultiHeadEncoderDecoder``
(configs/_base_/models/s5_moe_mdf_seg.py, BN instead of SyncBN):

- ``single``: plain S5ViT + one UperNet (the single-dataset model, 103.2 M
  for ViT-B), ``4 x per-dataset`` images of one dataset;
- ``mdf, one dataset``: the MoE-MDF model (4 experts, 4 heads, 160.4 M),
  the same images, all of one dataset (one expert, one head);
- ``mdf, 4 datasets``: the MoE-MDF model, ``per-dataset`` images of each of
  the four datasets (routing, four head passes).

``--ddp``: two gloo processes on CPU, per-step time with
``find_unused_parameters=False`` (the configs' default; the zero-touch of
absent datasets keeps every parameter in the graph) and ``True``, (a) every
rank with all four datasets (S5's sampling), (b) rank 0 with Vaihingen and
Potsdam only, rank 1 with LoveDA and OpenEarthMap only.

Prints markdown table rows and the ratios.
"""
import argparse
import copy
import socket
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
NAMES = ['vaihingen', 'potsdam', 'loveda', 'openearthmap']
CLASSES = dict(vaihingen=5, potsdam=5, loveda=7, openearthmap=9)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--per-dataset', type=int, default=2,
                   help='images per dataset in the 4-dataset step')
    p.add_argument('--size', type=int, default=None,
                   help='input size (default 512; 128 with --ddp)')
    p.add_argument('--arch', choices=['b', 'l', 'h'], default='b')
    p.add_argument('--iters', type=int, default=2)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--ddp', action='store_true')
    p.add_argument('--models', nargs='+',
                   default=['single', 'mdf-one', 'mdf-four'])
    return p.parse_args(argv)


def model_cfg(kind, arch, size):
    from mmengine.config import Config

    from s5_mm.models.backbones.vit import ARCH_SETTINGS
    cfg = Config.fromfile(str(ROOT / 'configs/_base_/models/'
                              's5_moe_mdf_seg.py'))
    m = copy.deepcopy(cfg.model.to_dict())
    c = ARCH_SETTINGS[arch]['embed_dims']
    m['backbone'].update(arch=arch, img_size=size)
    m['neck'].update(in_channels=c)
    m['data_preprocessor'].update(size=(size, size))
    for h in m['decode_head'].values():
        h.update(in_channels=[c] * 4,
                 norm_cfg=dict(type='BN', requires_grad=True))
    if kind == 'single':
        m['decode_head'] = {'vaihingen': m['decode_head']['vaihingen']}
        m['dataset_names'] = ['vaihingen']
        m['backbone'].update(num_experts=0, dataset_names=None)
    return m


def build(kind, args, device):
    from mmengine.registry import init_default_scope

    import s5_mm  # noqa: F401
    from s5_mm.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(kind, args.arch, args.size))
    model.init_weights()
    return model.to(device).train()


def make_batch(names, size, device):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    samples = []
    for n in names:
        s = SegDataSample(metainfo=dict(img_shape=(size, size),
                                        pad_shape=(size, size),
                                        ori_shape=(size, size),
                                        dataset_name=n))
        s.gt_sem_seg = PixelData(data=torch.randint(
            0, CLASSES[n], (1, size, size), generator=g).to(device))
        samples.append(s)
    inputs = torch.randn(len(names), 3, size, size, generator=g).to(device)
    return inputs, samples


def step(model, optim, batch, ctx):
    inputs, samples = batch
    optim.zero_grad(set_to_none=True)
    with ctx():
        losses = model.loss(inputs, samples)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    optim.step()


def autocast(args):
    if args.dtype == 'bf16':
        return lambda: torch.autocast(args.device, dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext


def time_steps(model, batch, args):
    optim = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ctx = autocast(args)
    sync = torch.cuda.synchronize if args.device == 'cuda' else (lambda: 0)
    for _ in range(args.warmup):
        step(model, optim, batch, ctx)
    sync()
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.iters):
        step(model, optim, batch, ctx)
    sync()
    sec = (time.perf_counter() - t0) / args.iters
    mem = torch.cuda.max_memory_allocated() / 2**30 \
        if args.device == 'cuda' else None
    return sec, mem


def run_single_process(args):
    device = torch.device(args.device)
    total = 4 * args.per_dataset
    plan = {
        'single': ('single', ['vaihingen'] * total,
                   'single-dataset model (plain ViT + 1 UperNet)'),
        'mdf-one': ('mdf', ['vaihingen'] * total,
                    'MoE-MDF model, all images of one dataset'),
        'mdf-four': ('mdf', [n for n in NAMES
                             for _ in range(args.per_dataset)],
                     f'MoE-MDF model, 4 datasets x {args.per_dataset}'),
    }
    times = {}
    print('| machine | images | dtype | model | s / step | peak mem |')
    print('|---|---|---|---|---|---|')
    for key in args.models:
        kind, names, label = plan[key]
        model = build(kind, args, device)
        n = sum(p.numel() for p in model.parameters()) / 1e6
        sec, mem = time_steps(model, make_batch(names, args.size, device),
                              args)
        times[key] = sec
        mem_s = f'{mem:.2f} GiB' if mem is not None else ''
        print(f'| {args.device} | {len(names)} x {args.size} | {args.dtype} '
              f'| {label} ({n:.1f} M) | {sec:.3f} | {mem_s} |', flush=True)
        del model
    if 'single' in times:
        for key in ('mdf-one', 'mdf-four'):
            if key in times:
                print(f'{key} / single: {times[key] / times["single"]:.3f}')
    if 'mdf-one' in times and 'mdf-four' in times:
        print(f'mdf-four / mdf-one: '
              f'{times["mdf-four"] / times["mdf-one"]:.3f}')
    return times


# ----------------------------------------------------------------- DDP
def _ddp_worker(rank, world, port, args, scenario, find_unused, out):
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world)
    model = build('mdf', args, torch.device('cpu'))
    model._mdf['touch'] = not find_unused
    ddp = MMDistributedDataParallel(model, device_ids=None,
                                    broadcast_buffers=False,
                                    find_unused_parameters=find_unused)
    optim = OptimWrapper(torch.optim.AdamW(ddp.parameters(), lr=1e-5))
    # disjoint: rank 0 vaihingen + potsdam, rank 1 loveda + openearthmap
    mine = NAMES[2 * rank:2 * rank + 2] if scenario == 'disjoint' else NAMES
    names = [n for n in mine for _ in range(args.per_dataset)]
    inputs, samples = make_batch(names, args.size, torch.device('cpu'))
    data = dict(inputs=list(inputs * 50 + 100), data_samples=samples)
    for _ in range(args.warmup):
        ddp.train_step(data, optim)
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(args.iters):
        ddp.train_step(data, optim)
    dist.barrier()
    if rank == 0:
        Path(out).write_text(str((time.perf_counter() - t0) / args.iters))
    dist.destroy_process_group()


def run_ddp(args):
    """Two scenarios: every rank sees all four datasets (S5's sampling:
    nothing unused, the zero-touch adds nothing), and each rank sees two
    (the heads and experts of the other two are unused on it)."""
    import tempfile

    import torch.multiprocessing as mp
    results = {}
    for scenario in ('all', 'disjoint'):
        for find_unused in (False, True):
            with socket.socket() as s:
                s.bind(('127.0.0.1', 0))
                port = s.getsockname()[1]
            with tempfile.TemporaryDirectory() as tmp:
                out = str(Path(tmp) / 'sec')
                mp.spawn(_ddp_worker, args=(2, port, args, scenario,
                                            find_unused, out),
                         nprocs=2, join=True)
                sec = float(Path(out).read_text())
            results[(scenario, find_unused)] = sec
            label = ('find_unused_parameters=True' if find_unused else
                     'find_unused_parameters=False' +
                     (' + zero-touch' if scenario == 'disjoint' else ''))
            batch = (f'2 datasets (disjoint) x {args.per_dataset}'
                     if scenario == 'disjoint' else
                     f'4 datasets x {args.per_dataset}')
            print(f'| 2 gloo procs x 1 thread | {batch} x {args.size} per '
                  f'rank | {label} | {sec:.3f} |', flush=True)
        print(f'{scenario}: find_unused / static: '
              f'{results[(scenario, True)] / results[(scenario, False)]:.3f}')
    return results


def main(argv=None):
    args = parse_args(argv)
    if args.size is None:
        args.size = 128 if args.ddp else 512
    return run_ddp(args) if args.ddp else run_single_process(args)


if __name__ == '__main__':
    main()
