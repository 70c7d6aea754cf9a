"""RotatedVOCMetric: a hand-computed case (VOC07 11-point and area, a
difficult box, a duplicate, IoU thresholds), agreement with MMRotate's
DOTAMetric / eval_rbbox_map on noisy predictions of real annotations,
per-dataset selection and the Task1 submission."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import s5_mm  # noqa: F401
from mmrotate.registry import DATASETS, METRICS
from mmrotate.structures import RotatedBoxes
from s5_mm.evaluation.metrics import RotatedVOCMetric

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmrotate'


def inst(boxes, labels, scores=None):
    d = InstanceData(
        bboxes=RotatedBoxes(torch.tensor(boxes, dtype=torch.float32)
                            .reshape(-1, 5)),
        labels=torch.tensor(labels, dtype=torch.long).reshape(-1))
    if scores is not None:
        d.scores = torch.tensor(scores, dtype=torch.float32).reshape(-1)
    return d


def sample(img_id, gt, gt_labels, ign, ign_labels, pred, pred_labels,
           scores, **meta):
    s = DetDataSample(metainfo=dict(img_id=img_id, **meta))
    s.gt_instances = inst(gt, gt_labels)
    s.ignored_instances = inst(ign, ign_labels)
    s.pred_instances = inst(pred, pred_labels, scores)
    return s.to_dict()


def box(x, y, w=10., h=10., t=0.):
    return [x, y, w, h, t]


def hand_case():
    """Class 0: GT G1, G2, G5 (A), G4 (B), G3 difficult (A). Detections by
    score: d1 = G1 (TP), d2 = G1 again (FP), d3 = G3 (ignored), d4 nowhere
    (FP), d5 = G4 (TP). Recall/precision: (.25, 1), (.25, .5), (.25, 1/3),
    (.5, .5). Class 1: one GT, one detection at IoU 60/140 = 0.43."""
    a = sample('A',
               gt=[box(20, 20), box(60, 20), box(100, 100), box(20, 200)],
               gt_labels=[0, 0, 0, 1],
               ign=[box(60, 60)], ign_labels=[0],
               pred=[box(20, 20), box(20.5, 20), box(60, 60), box(150, 150),
                     box(24, 200)],
               pred_labels=[0, 0, 0, 0, 1],
               scores=[.9, .8, .7, .6, .9])
    b = sample('B', gt=[box(30, 30, 20, 8, .3)], gt_labels=[0], ign=[],
               ign_labels=[], pred=[box(30, 30, 20, 8, .3)],
               pred_labels=[0], scores=[.5])
    return [a, b]


def run(metric, samples, classes=('c0', 'c1')):
    metric.dataset_meta = dict(classes=classes)
    metric.process(None, samples)
    return metric.compute_metrics(metric.results)


def test_hand_computed_11_points_and_area():
    res = run(RotatedVOCMetric(iou_thrs=[0.5, 0.3]), hand_case())
    ap0 = (3 * 1 + 3 * 0.5) / 11  # 11-point: t<=.2 -> 1, .3-.5 -> .5
    assert res['AP50_c0'] == pytest.approx(ap0, abs=1e-4)
    assert res['AP50_c1'] == 0  # IoU 0.43 < 0.5: a false positive
    assert res['AP30_c0'] == pytest.approx(ap0, abs=1e-4)
    assert res['AP30_c1'] == 1  # matched at 0.3
    assert res['AP50'] == pytest.approx(ap0 / 2, abs=1e-4)
    assert res['AP30'] == pytest.approx((ap0 + 1) / 2, abs=1e-4)
    assert res['mAP'] == pytest.approx((ap0 + 0.5) / 2, abs=2e-4)
    assert list(res)[0] == 'mAP'

    area = run(RotatedVOCMetric(eval_mode='area', classwise=False),
               hand_case())
    assert area == {'mAP': pytest.approx((.25 + .25 * .5) / 2, abs=1e-4),
                    'AP50': pytest.approx((.25 + .25 * .5) / 2, abs=1e-4)}


def test_difficult_box_counts_when_not_ignored():
    """The same case with G3 as an ordinary GT: d3 becomes a TP and G3 a
    positive (5 GT): R/P (.2,1) (.2,.5) (.4,2/3) (.4,.5) (.6,.6)."""
    a, b = hand_case()
    a['gt_instances'] = dict(
        bboxes=RotatedBoxes(torch.cat([a['gt_instances']['bboxes'].tensor,
                                       torch.tensor([box(60, 60)])])),
        labels=torch.tensor([0, 0, 0, 1, 0]))
    a['ignored_instances'] = inst([], []).to_dict()
    res = run(RotatedVOCMetric(), [a, b])
    want = (3 * 1 + 2 * (2 / 3) + 2 * 0.6) / 11
    assert res['AP50_c0'] == pytest.approx(want, abs=1e-4)


def test_no_detections_and_class_without_gt():
    s = sample('A', gt=[box(20, 20)], gt_labels=[0], ign=[], ign_labels=[],
               pred=[], pred_labels=[], scores=[])
    res = run(RotatedVOCMetric(), [s], classes=('c0', 'c1', 'c2'))
    # classes without GT are left out of the mean (VOC / MMRotate)
    assert res == {'mAP': 0., 'AP50': 0., 'AP50_c0': 0.}


def noisy_predictions(shared_data, seed=0):
    """Real GT (the DIOR-format DOTA crops, difficult ignored) with jittered,
    relabelled, dropped and invented detections."""
    root = shared_data / 'rotated' / 'dior_format_from_dota'
    ds = DATASETS.build(dict(
        type='S5DIORDataset', data_root=str(root),
        ann_file='ImageSets/Main/trainval.txt',
        data_prefix=dict(img_path='JPEGImages-trainval'),
        metainfo=dict(classes=('vehicle', 'ship', 'harbor')), diff_thr=0,
        test_mode=True,
        pipeline=[
            dict(type='mmdet.LoadAnnotations', with_bbox=True,
                 box_type='qbox'),
            dict(type='ConvertBoxType',
                 box_type_mapping=dict(gt_bboxes='rbox')),
            dict(type='mmdet.PackDetInputs', meta_keys=('img_id', ))
        ]))
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(len(ds)):
        ds_i = ds.get_data_info(i)
        out = ds.pipeline(dict(ds_i, img_shape=(800, 800), ori_shape=(800,
                                                                       800)))
        s = out['data_samples']
        gt = torch.cat([s.gt_instances.bboxes.tensor,
                        s.ignored_instances.bboxes.tensor])
        lab = torch.cat([s.gt_instances.labels, s.ignored_instances.labels])
        keep = torch.from_numpy(rng.random(len(gt)) < 0.8)
        p = gt[keep].clone()
        p[:, :2] += torch.from_numpy(rng.normal(0, 3, (len(p), 2))).float()
        p[:, 2:4] *= torch.from_numpy(rng.uniform(.8, 1.2,
                                                  (len(p), 2))).float()
        p[:, 4] += torch.from_numpy(rng.normal(0, .1, len(p))).float()
        pl = lab[keep].clone()
        swap = torch.from_numpy(rng.random(len(pl)) < 0.1)
        pl[swap] = (pl[swap] + 1) % 3
        n_fp = int(rng.integers(0, 8))
        fp = torch.from_numpy(np.c_[rng.uniform(0, 800, (n_fp, 2)),
                                    rng.uniform(8, 60, (n_fp, 2)),
                                    rng.uniform(-1.5, 1.5, n_fp)]).float()
        s.pred_instances = InstanceData(
            bboxes=RotatedBoxes(torch.cat([p, fp])),
            labels=torch.cat([pl, torch.from_numpy(
                rng.integers(0, 3, n_fp))]),
            scores=torch.from_numpy(rng.uniform(0.05, 1, len(p) + n_fp))
            .float())
        samples.append(s.to_dict())
    return samples, ds.metainfo


class InProcessPool:
    """Stands in for the spawn pool of MMRotate's eval_rbbox_map: the same
    functions, run here (spawning 4 processes took minutes on 2 cores)."""

    def __init__(self, *args):
        pass

    def starmap(self, func, args):
        return list(itertools.starmap(func, args))

    def close(self):
        pass


@pytest.mark.parametrize('mode', ['11points', 'area'])
def test_agrees_with_mmrotate(shared_data, mode, monkeypatch):
    """Same predictions, MMRotate's DOTAMetric (mean AP, 3 decimals) and
    eval_rbbox_map (AP per class)."""
    from mmrotate.evaluation import eval_rbbox_map
    from mmrotate.evaluation.functional import mean_ap
    monkeypatch.setattr(mean_ap, 'get_context',
                        lambda method: SimpleNamespace(Pool=InProcessPool))
    samples, meta = noisy_predictions(shared_data)
    ours = RotatedVOCMetric(iou_thrs=[0.5, 0.3], eval_mode=mode)
    ours.dataset_meta = meta
    ours.process(None, samples)
    res = ours.compute_metrics(ours.results)
    assert 0.2 < res['AP50'] < 0.95  # a non-trivial case

    theirs = METRICS.build(dict(type='DOTAMetric', iou_thrs=[0.5, 0.3],
                                eval_mode=mode))
    theirs.dataset_meta = meta
    theirs.process(None, samples)
    ref = theirs.compute_metrics(theirs.results)
    assert res['AP50'] == pytest.approx(ref['AP50'], abs=6e-4)
    assert res['AP30'] == pytest.approx(ref['AP30'], abs=6e-4)

    gts, preds = zip(*theirs.results)
    _, per_class = eval_rbbox_map([p['pred_bbox_scores'] for p in preds],
                                  list(gts), iou_thr=0.5,
                                  use_07_metric=mode == '11points',
                                  logger='silent', nproc=2)
    for name, r in zip(meta['classes'], per_class):
        assert res[f'AP50_{name}'] == pytest.approx(float(r['ap']),
                                                    abs=1e-4), name


def test_dataset_name_selects_samples_and_classes():
    """Two datasets in one evaluation (an mmdet ConcatDataset's list of
    metainfos): each metric scores its own samples with its classes."""
    a, b = hand_case()
    a['dataset_name'] = 'x'
    b['dataset_name'] = 'y'
    metas = [dict(classes=('c0', 'c1'), dataset_name='x'),
             dict(classes=('only', ), dataset_name='y')]
    mx = RotatedVOCMetric(dataset_name='x')
    my = RotatedVOCMetric(dataset_name='y')
    for m in (mx, my):
        m.dataset_meta = metas
        m.process(None, [a, b])
    assert [r['img_id'] for r in mx.results] == ['A']
    assert [r['img_id'] for r in my.results] == ['B']
    assert my.compute_metrics(my.results) == {'mAP': 1., 'AP50': 1.,
                                              'AP50_only': 1.}
    assert set(mx.compute_metrics(mx.results)) == {'mAP', 'AP50', 'AP50_c0',
                                                   'AP50_c1'}
    nameless = RotatedVOCMetric()
    nameless.dataset_meta = metas
    with pytest.raises(ValueError, match=r"has datasets \['x', 'y'\]; set "
                       'dataset_name'):
        nameless.compute_metrics([])


def test_bad_arguments():
    with pytest.raises(ValueError, match="eval_mode must be '11points'"):
        RotatedVOCMetric(eval_mode='voc12')
    with pytest.raises(ValueError, match='iou_thrs must be in'):
        RotatedVOCMetric(iou_thrs=[0.5, 1.5])
    with pytest.raises(ValueError, match='format_only needs outfile_prefix'):
        RotatedVOCMetric(format_only=True)


def test_format_only_merges_patches_into_task1_files(tmp_path):
    """Two overlapping patches see the same object: one line after the
    merge, in full-image corners."""
    s1 = sample('P0001__512__0___0', [], [], [], [], [box(400, 100, 40, 20)],
                [1], [.9])
    s2 = sample('P0001__512__384___0', [], [], [], [],
                [box(16, 100, 40, 20), box(200, 300, 30, 10, .5)], [1, 0],
                [.8, .7])
    out = tmp_path / 'Task1'
    m = RotatedVOCMetric(format_only=True, merge_patches=True,
                         outfile_prefix=str(out))
    assert run(m, [s1, s2], classes=('car', 'ship')) == {}
    ship = (out / 'Task1_ship.txt').read_text().split()
    assert ship[:2] == ['P0001', '0.9000']
    corners = np.array(ship[2:], float).reshape(4, 2)
    assert corners.mean(0) == pytest.approx([400, 100])
    car = (out / 'Task1_car.txt').read_text().split()
    assert car[0] == 'P0001'
    assert np.array(car[2:], float).reshape(4, 2).mean(0) == pytest.approx(
        [584, 300])
    assert (out / 'Task1.zip').is_file()
