"""Data selection (S5 stage 1): entropy filtering + diversity expansion.

    python tools/select_data.py CONFIG CHECKPOINT --pool LIST_OR_DIR \\
        --labeled LIST_OR_DIR --budget N --out DIR [--clusters 64] \\
        [--bg-index 0 | --all-classes] [--save-pseudo-labels] \\
        [--launcher none|pytorch|slurm] [--batch-size 32] \\
        [--chunk-size 1024] [--ood-floor none|VALUE|pP|auto]
    # 8 GPUs / processes on one machine
    torchrun --nproc_per_node 8 tools/select_data.py ... --launcher pytorch

Any trained MMSeg config + checkpoint (S4P checkpoints too) scores every pool
image: the mean over valid pixels of the foreground entropy, and the pooled,
L2-normalised backbone feature. The labelled images' features are clustered
(K-Means, M clusters); each pool image joins its most similar centroid and
each cluster keeps its quota of lowest-entropy images. A re-run with the
same --out resumes. Defaults come from the config's ``selection`` dict, then
from these options. See configs/selection/README.md.
"""
import argparse
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--pool', help='unlabelled folder or list file')
    p.add_argument('--labeled', help='labelled folder or list file')
    p.add_argument('--budget', type=int, help='images to select (B_u)')
    p.add_argument('--out', help='output folder (a re-run resumes)')
    p.add_argument('--clusters', type=int, help='K-Means clusters M (64)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--bg-index', type=int,
                   help='background class left out of the entropy (0)')
    g.add_argument('--all-classes', action='store_true', default=None,
                   help='entropy over all classes (label sets without a '
                   'background class, e.g. land cover)')
    p.add_argument('--save-pseudo-labels', action='store_true', default=None,
                   help='write argmax maps (GeoTIFF if the input is '
                   'georeferenced, else PNG) under OUT/pseudo_labels')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                   default='none')
    p.add_argument('--batch-size', type=int)
    p.add_argument('--chunk-size', type=int,
                   help='images per result file (resume unit)')
    p.add_argument('--num-workers', type=int, help='loader processes')
    p.add_argument('--ood-floor',
                   help="floor on the cosine similarity to the nearest "
                   "centroid: a number, 'pP' = P-th percentile of the "
                   "labelled images' held-out similarity, 'auto' = p1, "
                   "'none' (default)")
    p.add_argument('--redistribute', action='store_true', default=None,
                   help='give clusters short of candidates\' quota to the '
                   'others (off by default)')
    p.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                   help='model input size (default: the config\'s)')
    p.add_argument('--mode', choices=['resize', 'tile'],
                   help='fit images to the input size by resizing (default) '
                   'or by cutting tiles')
    p.add_argument('--feature-level', type=int,
                   help='backbone output pooled for the feature (-1)')
    p.add_argument('--amp', choices=['auto', 'none', 'bf16', 'fp16'],
                   help='autocast (auto: bf16 on CUDA, none on CPU)')
    p.add_argument('--kmeans', choices=['faiss', 'sklearn', 'minibatch'],
                   help='K-Means library (default faiss)')
    p.add_argument('--seed', type=int, help='K-Means seed (0)')
    p.add_argument('--absolute-paths', action='store_true', default=None,
                   help='write absolute paths in selected.txt')
    p.add_argument('--pool-root', help='folder relative pool paths resolve '
                   'against (default: the list file\'s folder)')
    p.add_argument('--labeled-root', help='the same for --labeled')
    p.add_argument('--list-suffix', help='appended to list entries without '
                   'a file suffix (MMSeg base-name lists), e.g. .tif')
    p.add_argument('--device', help='default: cuda:LOCAL_RANK, else cpu')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='key=value overrides of the config')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def init_distributed(launcher: str) -> None:
    """Process group for the launcher; gloo when there is no CUDA."""
    if launcher == 'none':
        return
    import torch
    import torch.distributed as dist
    from mmengine.dist import init_dist
    if dist.is_available() and dist.is_initialized():
        return
    if torch.cuda.is_available():
        init_dist(launcher, backend='nccl')
    elif launcher == 'pytorch':
        # mmengine's init_dist sets a CUDA device first, which fails here
        dist.init_process_group(backend='gloo')
    else:
        raise RuntimeError(f'--launcher {launcher} without CUDA is not '
                           'supported; use torchrun (--launcher pytorch)')


def build_model(cfg, checkpoint: str, device: str):
    """The config's model with the checkpoint's weights, in eval mode."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import s5_mm  # noqa: F401
    from mmseg.registry import MODELS
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                    revise_keys=[(r'^module\.', '')])
    return model.to(device).eval()


OPTION_ARGS = dict(clusters='clusters', bg_index='bg_index',
                   save_pseudo_labels='save_pseudo_labels',
                   batch_size='batch_size', chunk_size='chunk_size',
                   num_workers='num_workers', ood_floor='ood_floor',
                   redistribute='redistribute', input_size='input_size',
                   mode='mode', feature_level='feature_level',
                   amp='autocast', kmeans='kmeans_backend', seed='seed',
                   absolute_paths='absolute_paths', pool_root='pool_root',
                   labeled_root='labeled_root', list_suffix='list_suffix',
                   budget='budget')


def selection_options(cfg, args):
    """Config ``selection`` dict, overridden by the given options."""
    from s5_mm.selection import SelectionOptions, model_input_size
    sel = dict(cfg.get('selection') or {})
    for key in ('pool', 'labeled', 'load', 'out'):
        sel.pop(key, None)
    if sel.pop('all_classes', False):
        sel['bg_index'] = None
    for arg, key in OPTION_ARGS.items():
        v = getattr(args, arg)
        if v is not None:
            sel[key] = v
    if args.all_classes:
        sel['bg_index'] = None
    if sel.get('autocast') == 'none':
        sel['autocast'] = None
    if sel.get('input_size') is None:
        sel['input_size'] = model_input_size(cfg)
    if sel.get('budget') is None:
        raise SystemExit('error: --budget is required (or selection.budget '
                         'in the config)')
    sel['progress'] = not args.no_progress
    return SelectionOptions(**sel)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from s5_mm.selection import DataSelector, SelectionError, image_loader_cfg
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    sel_cfg = cfg.get('selection') or {}
    pool = args.pool or sel_cfg.get('pool')
    labeled = args.labeled or sel_cfg.get('labeled')
    out = args.out or sel_cfg.get('out')
    for name, v in (('--pool', pool), ('--labeled', labeled),
                    ('--out', out)):
        if not v:
            print(f'error: {name} is required', file=sys.stderr)
            return 2
    try:
        opts = selection_options(cfg, args)
        init_distributed(args.launcher)
        import torch
        device = args.device or (
            f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
            if torch.cuda.is_available() else 'cpu')
        model = build_model(cfg, args.checkpoint, device)
        ck = osp.abspath(args.checkpoint)
        st = os.stat(ck)
        selector = DataSelector(model, image_loader_cfg(cfg), opts, out,
                                model_id=f'{ck}:{st.st_size}:'
                                f'{int(st.st_mtime)}')
        summary = selector.run(pool, labeled)
    except (SelectionError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if summary is not None:
        print(f'selected {summary["selected"]} of {summary["pool"]} '
              f'(scored {summary["scored"]}, unreadable '
              f'{summary["unreadable"]}, no valid pixels '
              f'{summary["no_valid_pixels"]}, shortfall '
              f'{summary["shortfall"]}) -> {summary["selected_list"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
