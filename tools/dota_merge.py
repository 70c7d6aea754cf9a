"""Merge patch predictions back to full DOTA images and write the server's
Task 1 submission (``Task1_<class>.txt``, zipped).

    # predictions of the split test set, dumped by tools/test.py
    python tools/test.py CONFIG CKPT --out work_dirs/dota2_test.pkl
    python tools/dota_merge.py work_dirs/dota2_test.pkl work_dirs/Task1 \
        [--version 2.0 | --classes c1 c2 ...] [--iou-thr 0.1]

Patch names ``{image}__{window}__{x}___{y}`` (``dota_split.py``) give the
offset of each patch; its rotated boxes are shifted by it, then rotated NMS
per class (mmcv ``nms_rotated``, IoU 0.1) removes the duplicates of the
overlapping patches. A config's test evaluator can do the same in one run:
``RotatedVOCMetric(format_only=True, merge_patches=True,
outfile_prefix=...)``.
"""
import argparse
from typing import List, Sequence

from s5_mm.datasets.dota import (DOTA_VERSIONS, dota_classes, merge_patch_dets,
                                 write_task1_files)
from s5_mm.evaluation.metrics.rotated_voc_metric import as_array


def results_from_dump(dump: Sequence[dict]) -> List[dict]:
    """``tools/test.py --out`` entries -> ``dict(img_id, bboxes, scores,
    labels)``; an entry without ``img_id`` or predictions is an error."""
    out = []
    for i, r in enumerate(dump):
        if 'pred_instances' not in r or 'img_id' not in r:
            raise KeyError(f'result {i} has no img_id / pred_instances '
                           f'(keys {sorted(r)}); dump it with '
                           'tools/test.py --out')
        p = r['pred_instances']
        out.append(dict(img_id=r['img_id'], bboxes=as_array(p['bboxes'], 5),
                        scores=as_array(p['scores'], 1)[:, 0],
                        labels=as_array(p['labels'], 1)[:, 0].astype(int)))
    return out


def classes_of(version: str = None, classes: Sequence[str] = None):
    if classes:
        return list(classes)
    return dota_classes(version or '2.0')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('results', help='.pkl from tools/test.py --out')
    p.add_argument('out_dir', help='folder of the Task1_<class>.txt files')
    p.add_argument('--version', choices=sorted(DOTA_VERSIONS), default='2.0')
    p.add_argument('--classes', nargs='+', default=None,
                   help='class names in label order (instead of --version)')
    p.add_argument('--iou-thr', type=float, default=0.1)
    p.add_argument('--zip-name', default='Task1.zip')
    return p.parse_args(argv)


def main(argv=None):
    import mmengine
    args = parse_args(argv)
    results = results_from_dump(mmengine.load(args.results))
    classes = classes_of(args.version, args.classes)
    merged = merge_patch_dets(results, len(classes), args.iou_thr)
    files = write_task1_files(merged, classes, args.out_dir, args.zip_name)
    n = sum(len(d) for per in merged.values() for d in per)
    print(f'{len(results)} patches -> {len(merged)} images, {n} boxes; '
          f'{files[-1]}')
    return merged


if __name__ == '__main__':
    main()
