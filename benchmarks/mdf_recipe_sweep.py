"""Choose the MoE-MDF demo's fine-tuning recipe on the TUNING tiles only.

    python benchmarks/mdf_recipe_sweep.py --pipeline-dir work_dirs/s5_pipeline
        [--seeds 0] [--iters 150] [--variants NAME ...] [--out FILE]

Starts every variant from the S4P checkpoint of a finished pipeline run
(``tools/run_s5_pipeline.py``) and scores it on the tuning tiles
(``splits/mdf/tune.txt``, the MDF config's val set), next to the S4P model
itself on the same tiles (lc7 mIoU; lc3 mF1 of its predictions merged by
the config's class map). The test tiles are never read here. One JSON line
per run goes to ``--out``.
"""
import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MDF_CFG = 'configs/demo/mdf_vit-tiny_landcover.py'

# name -> overrides of the demo config (None: as shipped)
VARIANTS = {
    'shipped': {},
    'new-heads_lr5e-4': dict(classifier_init=None),
    'lr1.5e-4': dict(lr=1.5e-4),
    'lr5e-5': dict(lr=5e-5),
    'lr1.5e-4_decay0.8': dict(lr=1.5e-4, layer_decay=0.8),
    'lr5e-4_decay0.8': dict(lr=5e-4, layer_decay=0.8),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--pipeline-dir', default='work_dirs/s5_pipeline')
    p.add_argument('--data-root', default='data/landcover_nc')
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--iters', type=int, default=150)
    p.add_argument('--variants', nargs='+', default=list(VARIANTS),
                   choices=list(VARIANTS))
    p.add_argument('--work-dir', default='work_dirs/mdf_recipe_sweep')
    p.add_argument('--out', default='work_dirs/mdf_recipe_sweep/runs.jsonl')
    return p.parse_args(argv)


def s4p_on_tuning(s4p, data_root):
    import numpy as np
    from mmengine.config import Config

    from s5_mm.apis.dataset_predictions import predict_dataset
    from s5_mm.evaluation.bootstrap import confusions_by_path, mf1, miou
    from s5_mm.models.utils.classifier_init import merge_lut
    cfg = Config.fromfile(s4p['config'])
    cfg.test_dataloader.dataset.data_root = str(data_root)
    cfg.test_dataloader.dataset.ann_file = 'splits/mdf/tune.txt'
    recs = predict_dataset(cfg, s4p['checkpoint'])
    lc3_cfg = Config.fromfile(str(REPO / MDF_CFG))
    lut = merge_lut(lc3_cfg.model.classifier_init, 'lc3')
    _, c7 = confusions_by_path(recs, 7)
    # the lc3 labels are the 7-class ones merged by the same map
    lc3 = {}
    for r in recs:
        ignored = r['label'] == 255
        lc3[str(r['img_path'])] = np.where(
            ignored, 255, lut[np.where(ignored, 0, r['label'])])
    _, c3 = confusions_by_path(recs, 3, lut, lc3)
    return {'lc7/mIoU': float(miou(c7.sum(0))),
            'lc3/mFscore': float(mf1(c3.sum(0)))}


def run_variant(name, seed, args, s4p_ckpt, demo):
    from mmengine.runner import Runner
    over = dict(VARIANTS[name])
    work = Path(args.work_dir) / f'{name}_seed{seed}'
    cfg = demo.build_cfg(MDF_CFG, Path(args.data_root).resolve(), work, seed,
                         args.iters, s4p_ckpt)
    if 'classifier_init' in over:
        cfg.model.classifier_init = over['classifier_init']
    if 'lr' in over:
        cfg.optim_wrapper.optimizer.lr = over['lr']
    if 'layer_decay' in over:
        cfg.optim_wrapper.paramwise_cfg.layer_decay_rate = over['layer_decay']
    cfg.default_hooks.checkpoint.save_last = False
    runner = Runner.from_cfg(cfg)
    t0 = time.time()
    runner.train()
    metrics = {k: float(v) for k, v in runner.val().items()}
    return dict(variant=name, seed=seed, iters=args.iters, overrides=over,
                tuning=metrics, seconds=time.time() - t0)


def main(argv=None):
    args = parse_args(argv)
    import s5_mm  # noqa: F401
    from s5_mm.utils.tools import load_tool
    demo = load_tool('run_mdf_demo.py')
    pipe = Path(args.pipeline_dir)
    s4p = json.loads((pipe / 's4p' / 'stage.json').read_text())['result']
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = s4p_on_tuning(s4p, Path(args.data_root).resolve())
    rows = [dict(variant='S4P (start)', tuning=base)]
    print(json.dumps(rows[0]), flush=True)
    for seed in args.seeds:
        for name in args.variants:
            r = run_variant(name, seed, args, s4p['checkpoint'], demo)
            rows.append(r)
            print(json.dumps(r), flush=True)
            with out.open('a') as f:
                f.write(json.dumps(r) + '\n')
    return rows


if __name__ == '__main__':
    main()
