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
import importlib.util
import sys
from pathlib import Path


def _sibling(name):
    """``<name>.py`` beside this script, imported by path under its own
    module name: tools/dataset_converters/ has a ``_common.py`` too, and one
    process (a test run) may import both."""
    key = f's5_mm_tools.model_converters.{name}'
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            key, Path(__file__).with_name(f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


_common = _sibling('_common')  # stops a python without the environment
add_output_args = _common.add_output_args
load_checkpoint_state = _common.load_checkpoint_state
save_conversion = _common.save_conversion

from s5_mm.models.utils.ckpt_convert import convert_mae  # noqa: E402
from s5_mm.utils.cli import positive_int  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='MAE / timm checkpoint')
    p.add_argument('dst', help='output .pth')
    p.add_argument('--img-size', type=positive_int, default=None,
                   help='resize pos_embed to this input size (default: keep '
                   'the source grid; S5ViT resizes it when loading)')
    p.add_argument('--patch-size', type=positive_int, default=16)
    p.add_argument('--prefix', default='',
                   help="prefix for output keys, e.g. 'backbone.'")
    add_output_args(p)
    args = p.parse_args(argv)
    if args.img_size and args.img_size % args.patch_size:
        p.error(f'--img-size {args.img_size} is not a multiple of '
                f'--patch-size {args.patch_size}')
    return args


def main(argv=None):
    args = parse_args(argv)
    state = load_checkpoint_state(args.src, unsafe=args.unsafe_pickle)
    grid = None
    if args.img_size:
        grid = (args.img_size // args.patch_size, ) * 2
    result = convert_mae(state, grid_size=grid, prefix=args.prefix)
    save_conversion(result, args.src, args.dst, 'mae', args.config,
                    args.strict, args.allow_partial)


if __name__ == '__main__':
    main()
