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
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from s5_mm.models.utils.ckpt_convert import (  # noqa: E402
    check_against_config, convert_s5_official, load_checkpoint_state)


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
    p.add_argument('--config', help='model config to check the keys against')
    p.add_argument('--strict', action='store_true',
                   help='fail on unknown or missing keys')
    p.add_argument('--unsafe-pickle', action='store_true',
                   help='allow arbitrary pickled objects (trusted files only)')
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
    print(result.report())
    problems = bool(result.unknown)
    if args.config:
        problems |= check_against_config(result.state_dict, args.config)
    if args.strict and problems:
        sys.exit('conversion incomplete (see above); nothing written')
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=result.state_dict,
                    meta=dict(converted_from=str(args.src),
                              format='s5_official')), args.dst)
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
