"""S5IoUMetric and MultiDatasetSegMetric against an independent confusion
matrix (sklearn), ignored pixels, the label-equals-class-count bug, mF1,
per-dataset routing and the LoveDA server PNGs."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample
from PIL import Image
from sklearn.metrics import confusion_matrix

import s5_mm  # noqa: F401
from s5_mm.evaluation.metrics import MultiDatasetSegMetric, S5IoUMetric

V_CLASSES = ('impervious', 'building', 'low_veg', 'tree', 'car')


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def oracle(preds, labels, num_classes, ignore=(255, )):
    """Per-class IoU / F1 and aAcc from sklearn's confusion matrix over the
    non-ignored pixels of all images."""
    p = np.concatenate([a.ravel() for a in preds])
    g = np.concatenate([a.ravel() for a in labels])
    keep = ~np.isin(g, ignore)
    cm = confusion_matrix(g[keep], p[keep], labels=range(num_classes))
    tp = np.diag(cm).astype(float)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / (tp + fp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    return dict(iou=iou, f1=f1, aacc=tp.sum() / cm.sum(),
                mIoU=np.nanmean(iou) * 100, mF1=np.nanmean(f1) * 100)


def official_bug_miou(preds, labels, num_classes):
    """The released S5 numpy IoU: label == num_classes (clutter) pixels
    count as correct predictions of the last class (car)."""
    p = np.concatenate([a.ravel() for a in preds])
    g = np.concatenate([a.ravel() for a in labels])
    clutter = g == num_classes
    p = np.where(clutter, num_classes - 1, p)
    g = np.where(clutter, num_classes - 1, g)
    keep = g < num_classes
    cm = confusion_matrix(g[keep], p[keep], labels=range(num_classes))
    tp = np.diag(cm).astype(float)
    return np.nanmean(tp / (cm.sum(0) + cm.sum(1) - tp)) * 100


def sample(pred, label, name=None, path='x.png'):
    s = SegDataSample(metainfo=dict(img_path=path, seg_map_path=path,
                                    **({'dataset_name': name} if name else {})))
    s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
    if label is not None:
        s.gt_sem_seg = PixelData(data=torch.as_tensor(label)[None])
    return s


def run(metric, meta, samples):
    ev = Evaluator(metric)
    ev.dataset_meta = meta
    ev.process(samples, {})
    return ev.evaluate(len(samples))


def random_case(seed, num_classes, n=3, size=24, extra=(255, )):
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for _ in range(n):
        g = rng.integers(0, num_classes, (size, size))
        # predictions agree with the label 60 % of the time
        p = np.where(rng.random((size, size)) < 0.6, g,
                     rng.integers(0, num_classes, (size, size)))
        for v in extra:
            g[rng.random((size, size)) < 0.15] = v
        preds.append(p)
        labels.append(g)
    return preds, labels


def test_ignored_pixels_and_clutter_equal_to_class_count_never_count():
    # Vaihingen-like: 5 classes, clutter kept as label 5 (= num_classes)
    # and boundary pixels as 255; both are ignored.
    preds, labels = random_case(0, 5, extra=(255, 5))
    for p, g in zip(preds, labels):
        p[g == 5] = 4  # the model says "car" on clutter
    metric = dict(type='S5IoUMetric', ignore_index=[255, 5],
                  iou_metrics=['mIoU', 'mFscore'])
    res = run(metric, dict(classes=V_CLASSES),
              [sample(p, g) for p, g in zip(preds, labels)])
    ref = oracle(preds, labels, 5, ignore=(255, 5))
    assert res['mIoU'] == pytest.approx(round(ref['mIoU'], 2), abs=1e-4)
    assert res['mFscore'] == pytest.approx(round(ref['mF1'], 2), abs=1e-4)
    assert res['aAcc'] == pytest.approx(round(ref['aacc'] * 100, 2),
                                        abs=1e-4)
    # the released code's IoU would score higher (clutter counted as car)
    assert official_bug_miou(preds, labels, 5) > ref['mIoU'] + 1


def test_label_beyond_class_count_raises_naming_file_and_dataset():
    preds, labels = random_case(1, 5, n=1, extra=(5, ))
    metric = S5IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=V_CLASSES)
    with pytest.raises(ValueError, match=r"a/top_1\.png \(dataset "
                       r"'vaihingen'\): label ids \[5\]"):
        metric.process({}, [sample(preds[0], labels[0], 'vaihingen',
                                   'a/top_1.png').to_dict()])
    # MMSeg's IoUMetric silently drops label 5 from the label histogram but
    # keeps its pixels as false positives of the predicted classes
    mm = IoUMetric(iou_metrics=['mIoU'])
    mm.dataset_meta = dict(classes=V_CLASSES)
    mm.process({}, [sample(preds[0], labels[0]).to_dict()])
    assert mm.results


def test_f1_of_a_present_but_missed_class_is_zero_not_nan():
    g = np.array([[0, 0, 1, 1], [2, 2, 0, 1]])
    p = np.array([[0, 0, 1, 0], [0, 1, 0, 1]])  # class 2 never hit
    ref = oracle([p], [g], 3)
    assert ref['f1'][2] == 0
    ours = run(dict(type='S5IoUMetric', iou_metrics=['mFscore']),
               dict(classes=('a', 'b', 'c')), [sample(p, g)])
    assert ours['mFscore'] == pytest.approx(round(ref['mF1'], 2), abs=1e-4)
    mm = run(dict(type='IoUMetric', iou_metrics=['mFscore']),
             dict(classes=('a', 'b', 'c')), [sample(p, g)])
    assert mm['mFscore'] > ours['mFscore']  # MMSeg's NaN is dropped


def vp_metric(**kwargs):
    return dict(type='MultiDatasetSegMetric', dataset_metrics=dict(
        vaihingen=dict(type='S5IoUMetric', iou_metrics=['mIoU']),
        loveda=dict(type='S5IoUMetric', iou_metrics=['mFscore', 'mIoU'])),
        **kwargs)


META = [dict(classes=V_CLASSES, dataset_name='vaihingen'),
        dict(classes=tuple('abcdefg'), dataset_name='loveda')]


def test_multi_dataset_metric_routes_by_dataset_name():
    pv, gv = random_case(2, 5)
    pl, gl = random_case(3, 7)
    samples = []
    for i in range(3):  # interleaved, as a shuffled loader would give
        samples += [sample(pv[i], gv[i], 'vaihingen'),
                    sample(pl[i], gl[i], 'loveda')]
    res = run(vp_metric(), META, samples)
    rv, rl = oracle(pv, gv, 5), oracle(pl, gl, 7)
    assert res['vaihingen/mIoU'] == pytest.approx(round(rv['mIoU'], 2),
                                                  abs=1e-4)
    assert res['loveda/mFscore'] == pytest.approx(round(rl['mF1'], 2),
                                                  abs=1e-4)
    assert res['loveda/mIoU'] == pytest.approx(round(rl['mIoU'], 2),
                                               abs=1e-4)
    # mean of the primaries: vaihingen mIoU, loveda mFscore (first listed)
    assert res['mean'] == pytest.approx(
        (res['vaihingen/mIoU'] + res['loveda/mFscore']) / 2, abs=0.006)
    res = run(vp_metric(primary=dict(loveda='mIoU')), META, samples)
    assert res['mean'] == pytest.approx(
        (res['vaihingen/mIoU'] + res['loveda/mIoU']) / 2, abs=0.006)


def test_multi_dataset_metric_errors():
    with pytest.raises(KeyError, match=r"datasets \['potsdam'\] have no "
                       'metric'):
        run(vp_metric(), META + [dict(classes=V_CLASSES,
                                      dataset_name='potsdam')], [])
    pv, gv = random_case(2, 5, n=1)
    with pytest.raises(KeyError, match="no metric for dataset 'isaid'"):
        run(vp_metric(), META, [sample(pv[0], gv[0], 'isaid')])
    with pytest.raises(KeyError, match='sample has no dataset_name'):
        run(vp_metric(), META, [sample(pv[0], gv[0])])
    with pytest.raises(KeyError, match=r"primary names datasets \['oem'\]"):
        MultiDatasetSegMetric(
            dataset_metrics=dict(a=dict(type='S5IoUMetric')),
            primary=dict(oem='mIoU'))


def test_loveda_server_pngs_hold_class_ids(tmp_path):
    """LoveDA's server wants uint8 PNGs named like the image with ids 0..6
    (its reference predict.py writes argmax over the 7 classes; MMSeg 1.x
    writes id + 1 for reduce_zero_label datasets)."""
    rng = np.random.default_rng(4)
    preds = [rng.integers(0, 7, (16, 20)) for _ in range(2)]
    out = tmp_path / 'submit'
    metric = vp_metric()
    metric['dataset_metrics']['loveda'] = dict(
        type='S5IoUMetric', format_only=True, output_dir=str(out))
    samples = []
    for i, p in enumerate(preds):
        s = sample(p, None, 'loveda', f'Test/Urban/images_png/{4191 + i}.png')
        s.set_metainfo(dict(reduce_zero_label=True))
        samples.append(s)
    res = run(metric, META, samples)
    assert res == {}  # format only: no scores
    for i, p in enumerate(preds):
        img = Image.open(out / f'{4191 + i}.png')
        assert img.mode == 'L'
        np.testing.assert_array_equal(np.asarray(img), p)
    # MMSeg's own export would shift the ids by one
    mm = IoUMetric(format_only=True, output_dir=str(tmp_path / 'mm'))
    mm.dataset_meta = dict(classes=tuple('abcdefg'))
    mm.process({}, [samples[0].to_dict()])
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / 'mm' / '4191.png')), preds[0] + 1)


def test_multi_dataset_output_dir_one_folder_per_dataset(tmp_path):
    """output_dir (tools/test.py --out): each dataset's PNGs in
    <output_dir>/<name>, named like the image; one tile name in both."""
    pv, gv = random_case(5, 5, n=1)
    pl, gl = random_case(6, 7, n=1)
    res = run(vp_metric(output_dir=str(tmp_path)), META,
              [sample(pv[0], gv[0], 'vaihingen', 'a/t.png'),
               sample(pl[0], gl[0], 'loveda', 'b/t.png')])
    assert 'vaihingen/mIoU' in res
    np.testing.assert_array_equal(
        np.array(Image.open(tmp_path / 'vaihingen/t.png')), pv[0])
    np.testing.assert_array_equal(
        np.array(Image.open(tmp_path / 'loveda/t.png')), pl[0])
    with pytest.raises(TypeError, match="metric of 'v' .*writes no "
                       'prediction files'):
        MultiDatasetSegMetric(
            dataset_metrics=dict(v=dict(type='DumpResults',
                                        out_file_path='x.pkl')),
            output_dir=str(tmp_path))
