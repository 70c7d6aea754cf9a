"""Convert a released S5 checkpoint (official code, mmcv-transformer keys)
to s5_mm segmentor keys.

    python tools/model_converters/s5official2s5mm.py SRC DST
        [--expert-names vaihingen,potsdam,OpenEarthMap,loveda]
        [--target-expert-names vaihingen,potsdam,loveda,openearthmap]
        [--name-map OpenEarthMap=openearthmap] [--config CFG] [--strict]

The key mapping is documented in
``s5_mm.models.utils.ckpt_convert.convert_s5_official``. Dropped and unknown
keys are printed; with ``--config`` the result is also checked against the
model the config builds (missing / unexpected / shape-mismatched keys).

The released code upsamples the decoder's logits to the input with bilinear
``align_corners=True`` (MMSeg's heads: ``False``); the tool prints the test
setting that reproduces its predictions, ``model.test_cfg.align_corners=True``
(``MultiHeadEncoderDecoder``, the configs of ``configs/mdf`` and
``configs/sdf``).
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

from s5_mm.models.utils.ckpt_convert import convert_s5_official  # noqa: E402


# the released forward: F.interpolate(logits, size, mode='bilinear',
# align_corners=True)
OFFICIAL_UPSAMPLING_HINT = (
    'to reproduce the released predictions, test with the official '
    'upsampling of the logits (bilinear, align_corners=True): '
    '--cfg-options model.test_cfg.align_corners=True (or '
    "test_cfg=dict(..., align_corners=True) in the model config)")


def _names(text):
    return [t.strip() for t in text.split(',') if t.strip()] if text else None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='official S5 checkpoint')
    p.add_argument('dst', help='output .pth')
    p.add_argument('--expert-names', type=_names,
                   help='dataset of each official expert, in expert order '
                   '(the --tasks of the official run)')
    p.add_argument('--target-expert-names', type=_names,
                   help='backbone.dataset_names of the s5_mm config')
    p.add_argument('--name-map', nargs='*', default=[],
                   help='official decoder suffix -> dataset name, X=y')
    p.add_argument('--unsuffixed-decoder', default='vaihingen',
                   help="dataset of the official unsuffixed 'semsegdecoder' "
                   'in multi-dataset checkpoints')
    add_output_args(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    name_map = {}
    for item in args.name_map:
        if '=' not in item:
            sys.exit(f'--name-map expects X=y, got {item!r}')
        k, v = item.split('=', 1)
        name_map[k] = v
    state = load_checkpoint_state(args.src, unsafe=args.unsafe_pickle)
    result = convert_s5_official(
        state, expert_names=args.expert_names,
        target_expert_names=args.target_expert_names, name_map=name_map,
        unsuffixed_decoder=args.unsuffixed_decoder)
    save_conversion(result, args.src, args.dst, 's5_official', args.config,
                    args.strict, args.allow_partial)
    print(OFFICIAL_UPSAMPLING_HINT)


if __name__ == '__main__':
    main()
