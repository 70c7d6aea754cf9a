"""Convert an MAE / timm ViT checkpoint to S5ViT keys.

    python tools/model_converters/mae2s5mm.py SRC DST [--img-size 512]
        [--patch-size 16] [--prefix backbone.] [--config CFG]

The key mapping is documented in
``s5_mm.models.utils.ckpt_convert.convert_mae``. Dropped and unknown keys are
printed; with ``--config`` the result is also checked against the model the
config builds (missing / unexpected / shape-mismatched keys). ``--strict``
makes unknown or missing keys an error.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from s5_mm.models.utils.ckpt_convert import (  # noqa: E402
    check_against_config, convert_mae, load_checkpoint_state)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='MAE / timm checkpoint')
    p.add_argument('dst', help='output .pth')
    p.add_argument('--img-size', type=int, default=None,
                   help='resize pos_embed to this input size (default: keep '
                   'the source grid; S5ViT resizes it when loading)')
    p.add_argument('--patch-size', type=int, default=16)
    p.add_argument('--prefix', default='',
                   help="prefix for output keys, e.g. 'backbone.'")
    p.add_argument('--config', help='model config to check the keys against')
    p.add_argument('--strict', action='store_true',
                   help='fail on unknown or missing keys')
    p.add_argument('--unsafe-pickle', action='store_true',
                   help='allow arbitrary pickled objects (trusted files only)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    state = load_checkpoint_state(args.src, unsafe=args.unsafe_pickle)
    grid = None
    if args.img_size:
        grid = (args.img_size // args.patch_size, ) * 2
    result = convert_mae(state, grid_size=grid, prefix=args.prefix)
    print(result.report())
    problems = bool(result.unknown)
    if args.config:
        problems |= check_against_config(result.state_dict, args.config)
    if args.strict and problems:
        sys.exit('conversion incomplete (see above); nothing written')
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=result.state_dict,
                    meta=dict(converted_from=str(args.src), format='mae')),
               args.dst)
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
