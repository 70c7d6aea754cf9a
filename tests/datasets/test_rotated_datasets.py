"""S5DOTADataset / S5DIORDataset on the shared real annotation files: box
counts per class (counted here from the raw text / XML, independently of
the parsers), the le90 convention round trip, dataset_name through the
pipeline, and bad input named in the error or skip note."""
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

import s5_mm  # noqa: F401
from mmrotate.registry import DATASETS
from mmrotate.structures import RotatedBoxes
from mmrotate.structures.bbox import qbox2rbox, rbox2qbox

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmrotate'
DOTA_V1 = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field',
           'small-vehicle', 'large-vehicle', 'ship', 'tennis-court',
           'basketball-court', 'storage-tank', 'soccer-ball-field',
           'roundabout', 'harbor', 'swimming-pool', 'helicopter')


def build(**cfg):
    cfg.setdefault('pipeline', [])
    return DATASETS.build(cfg)


def infos(ds):
    return [ds.get_data_info(i) for i in range(len(ds))]


def raw_dota_counts(path):
    """Objects per class read with a regex (8 numbers, name, difficulty)."""
    line = re.compile(r'^(\S+\s+){8}(\S+)\s+(\d)\s*$')
    counts = Counter()
    for s in open(path).read().splitlines():
        m = line.match(s)
        if m:
            counts[m.group(2)] += 1
    return counts


# ------------------------------------------------------------------- DOTA
def test_dota_mini_counts_per_class(shared_data):
    root = shared_data / 'rotated' / 'dota_mini'
    ds = build(type='S5DOTADataset', data_root=str(root),
               ann_file='labelTxt', data_prefix=dict(img_path='images'))
    assert [d['img_id'] for d in infos(ds)] == ['P0003', 'P0004', 'P0706']
    total = 0
    for d in infos(ds):
        want = raw_dota_counts(root / 'labelTxt' / f"{d['img_id']}.txt")
        got = Counter(DOTA_V1[i['bbox_label']] for i in d['instances'])
        assert got == want
        assert d['dataset_name'] == 'dota'
        assert d['img_path'].endswith(f"images/{d['img_id']}.png")
        total += len(d['instances'])
    # 698 objects in the files (the folder README says 834)
    assert total == 698
    p3 = infos(ds)[0]
    assert p3['gsd'] == '0.115726939386'  # from the header line
    assert Counter(DOTA_V1[i['bbox_label']] for i in p3['instances']) == {
        'large-vehicle': 40, 'small-vehicle': 15}
    assert ds.metainfo['dataset_name'] == 'dota'
    assert ds.load_warnings == []


def test_dota_difficulty_thresholds(shared_data):
    root = shared_data / 'rotated' / 'dota_mini'
    kw = dict(type='S5DOTADataset', data_root=str(root),
              ann_file='labelTxt', data_prefix=dict(img_path='images'))
    train = infos(build(**kw))
    evalp = infos(build(diff_thr=0, **kw))
    assert all(i['ignore_flag'] == 0 for d in train for i in d['instances'])
    # P0003: 6 difficult large + 7 difficult small vehicles
    assert sum(i['ignore_flag'] for i in evalp[0]['instances']) == 13
    assert sum(i['ignore_flag'] for d in evalp
               for i in d['instances']) == 6 + 7 + 27 + 7 + 6


def test_dota_v2_classes_and_mmrotate_fixture(shared_data):
    root = shared_data / 'rotated' / 'dota'
    ds = build(type='S5DOTAv2Dataset', data_root=str(root),
               ann_file='labelTxt', data_prefix=dict(img_path='images'))
    assert len(ds.metainfo['classes']) == 18
    (d, ) = infos(ds)
    assert d['img_id'] == 'P2805__1024__0___0'
    assert [ds.metainfo['classes'][i['bbox_label']]
            for i in d['instances']] == ['plane'] * 4
    assert d['instances'][0]['bbox'] == [359., 663., 369., 497., 543., 509.,
                                         531., 677.]


def test_dota_test_images_without_labels(shared_data):
    root = shared_data / 'rotated' / 'dota_mini'
    ds = build(type='S5DOTAv2Dataset', data_root=str(root), ann_file='',
               data_prefix=dict(img_path='images'), test_mode=True,
               dataset_name='dota2')
    assert [(d['img_id'], d['instances'], d['dataset_name'])
            for d in infos(ds)] == [('P0003', [], 'dota2'),
                                    ('P0004', [], 'dota2'),
                                    ('P0706', [], 'dota2')]


# ------------------------------------------------------------------- DIOR
def test_dior_real_file(shared_data):
    root = shared_data / 'rotated' / 'dior'
    ds = build(type='S5DIORDataset', data_root=str(root), ann_file='',
               data_prefix=dict(img_path='JPEGImages'))
    (d, ) = infos(ds)
    assert (d['img_id'], d['width'], d['height'], d['dataset_name']) == (
        '00001', 800, 800, 'dior')
    (obj, ) = d['instances']
    assert ds.metainfo['classes'][obj['bbox_label']] == 'golffield'
    assert list(obj['bbox']) == [133, 237, 684, 237, 684, 672, 133, 672]
    assert obj['difficult'] == 0 and obj['ignore_flag'] == 0


def test_dior_format_from_dota_counts(shared_data):
    root = shared_data / 'rotated' / 'dior_format_from_dota'
    ann = root / 'Annotations' / 'Oriented Bounding Boxes'
    classes = ('vehicle', 'ship', 'harbor')
    kw = dict(type='S5DIORDataset', data_root=str(root),
              ann_file='ImageSets/Main/trainval.txt',
              data_prefix=dict(img_path='JPEGImages-trainval'),
              metainfo=dict(classes=classes))
    ds, ds_eval = build(**kw), build(diff_thr=0, **kw)
    ids = open(root / 'ImageSets/Main/trainval.txt').read().split()
    assert [d['img_id'] for d in infos(ds)] == ids
    for d, e in zip(infos(ds), infos(ds_eval)):
        objs = ET.parse(ann / f"{d['img_id']}.xml").findall('object')
        want = Counter(o.findtext('name') for o in objs)
        assert Counter(classes[i['bbox_label']]
                       for i in d['instances']) == want
        n_diff = sum(o.findtext('difficult') == '1' for o in objs)
        assert sum(i['ignore_flag'] for i in e['instances']) == n_diff
    assert sum(len(d['instances']) for d in infos(ds)) == 1727
    assert ds.metainfo['classes'] == classes
    assert ds.metainfo['dataset_name'] == 'dior'


# ------------------------------------------------------ le90 round trip
def _le90(polys):
    r = RotatedBoxes(qbox2rbox(torch.as_tensor(polys, dtype=torch.float32)))
    return r.regularize_boxes('le90')


def test_le90_hand_case_dior_golffield():
    r = _le90([[133, 237, 684, 237, 684, 672, 133, 672]])
    torch.testing.assert_close(
        r, torch.tensor([[408.5, 454.5, 551., 435., 0.]]), atol=1e-3,
        rtol=0)
    # a vertical box: the long side becomes w, the angle -90 deg
    r = _le90([[0, 0, 10, 0, 10, 40, 0, 40]])
    torch.testing.assert_close(
        r, torch.tensor([[5., 20., 40., 10., -np.pi / 2]]), atol=1e-3,
        rtol=0)


def _same_corners(a, b):
    """Max distance between the corners of two quads, any start/order."""
    a, b = np.asarray(a).reshape(4, 2), np.asarray(b).reshape(4, 2)
    best = np.inf
    for k in range(4):
        for q in (np.roll(b, k, 0), np.roll(b[::-1], k, 0)):
            best = min(best, np.abs(a - q).max())
    return best


def test_le90_round_trip_on_real_polygons(shared_data):
    """polygon -> rbox (le90) -> polygon on the 698 real DOTA objects: the
    angle in [-90, 90) deg with w >= h, the rectangle's corners within a
    couple of pixels of the annotated (integer, near-rectangular) corners,
    and rbox -> polygon -> rbox exact."""
    root = shared_data / 'rotated' / 'dota_mini'
    ds = build(type='S5DOTADataset', data_root=str(root),
               ann_file='labelTxt', data_prefix=dict(img_path='images'))
    polys = np.array([i['bbox'] for d in infos(ds) for i in d['instances']],
                     np.float32)
    r = _le90(polys)
    assert len(r) == 698
    t = r[:, 4]
    assert (t >= -np.pi / 2 - 1e-6).all() and (t < np.pi / 2).all()
    assert (r[:, 2] >= r[:, 3]).all() and (r[:, 3] > 0).all()
    back = rbox2qbox(r).numpy()
    dist = np.array([_same_corners(p, q) for p, q in zip(polys, back)])
    # annotated corners are integers on near-rectangles
    assert np.median(dist) < 1.5 and np.percentile(dist, 95) < 4.0
    r2 = _le90(back)
    torch.testing.assert_close(r2[:, :4], r[:, :4], atol=2e-2, rtol=1e-4)
    dt = (r2[:, 4] - r[:, 4]).abs()
    assert ((dt < 1e-3) | ((dt - np.pi).abs() < 1e-3)).all()


# ------------------------------------------------- through the pipeline
def test_pipeline_packs_rotated_boxes_and_dataset_name(shared_data):
    root = shared_data / 'rotated' / 'dior_format_from_dota'
    pipeline = [
        dict(type='mmdet.LoadImageFromFile'),
        dict(type='mmdet.LoadAnnotations', with_bbox=True, box_type='qbox'),
        dict(type='ConvertBoxType', box_type_mapping=dict(gt_bboxes='rbox')),
        dict(type='mmdet.Resize', scale=(1024, 1024), keep_ratio=True),
        dict(type='mmdet.PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                        'scale_factor', 'dataset_name')),
    ]
    ds = build(type='S5DIORDataset', data_root=str(root),
               ann_file='ImageSets/Main/trainval.txt',
               data_prefix=dict(img_path='JPEGImages-trainval'),
               metainfo=dict(classes=('vehicle', 'ship', 'harbor')),
               pipeline=pipeline)
    out = ds[0]
    s = out['data_samples']
    assert s.metainfo['dataset_name'] == 'dior'
    assert tuple(out['inputs'].shape) == (3, 1024, 1024)
    n = len(infos(ds)[0]['instances'])
    assert s.gt_instances.bboxes.tensor.shape == (n, 5)
    # 800 -> 1024: centres and sides scaled by 1.28
    raw = np.array(infos(ds)[0]['instances'][0]['bbox'],
                   np.float32).reshape(4, 2)
    (cx, cy), (w, h), _ = cv2.minAreaRect(raw)
    got = s.gt_instances.bboxes.tensor[0]
    torch.testing.assert_close(got[:2], torch.tensor([cx, cy]) * 1.28,
                               atol=0.05, rtol=0)
    assert sorted(got[2:4].tolist()) == pytest.approx(
        sorted([w * 1.28, h * 1.28]), abs=0.05)


# ---------------------------------------------------------- bad input
def _dota_copy(shared_data, tmp_path):
    src = shared_data / 'rotated' / 'dota_mini'
    dst = tmp_path / 'dota'
    (dst / 'labelTxt').mkdir(parents=True)
    (dst / 'images').mkdir()
    for name in ('P0003', 'P0004'):
        shutil.copy(src / 'labelTxt' / f'{name}.txt', dst / 'labelTxt')
        (dst / 'images' / f'{name}.png').write_bytes(b'')  # never read
    return dst


def _dota(dst, **kw):
    return build(type='S5DOTADataset', data_root=str(dst),
                 ann_file='labelTxt', data_prefix=dict(img_path='images'),
                 **kw)


def test_unknown_class_error_names_file_and_line(shared_data, tmp_path):
    dst = _dota_copy(shared_data, tmp_path)
    with open(dst / 'labelTxt' / 'P0004.txt', 'a') as f:
        f.write('1 1 30 1 30 20 1 20 spaceship 0\n')
    with pytest.raises(KeyError, match=r"P0004\.txt:110: class 'spaceship' "
                       'is not a class of this dataset'):
        _dota(dst)
    ds = _dota(dst, on_unknown_class='skip')
    assert len(infos(ds)[1]['instances']) == 107
    (note, ) = ds.load_warnings
    assert 'P0004.txt:110' in note and 'spaceship' in note


def test_degenerate_polygon_skipped_and_named(shared_data, tmp_path):
    dst = _dota_copy(shared_data, tmp_path)
    with open(dst / 'labelTxt' / 'P0003.txt', 'a') as f:
        f.write('5 5 5 5 5 5 5 5 ship 0\n')  # four equal corners
        f.write('0 0 10 10 20 20 30 30 ship 0\n')  # collinear
    ds = _dota(dst)
    assert len(infos(ds)[0]['instances']) == 55
    assert len(ds.load_warnings) == 2
    assert all('P0003.txt:' in w and 'degenerate polygon' in w
               for w in ds.load_warnings)


def test_malformed_line_is_an_error(shared_data, tmp_path):
    dst = _dota_copy(shared_data, tmp_path)
    with open(dst / 'labelTxt' / 'P0003.txt', 'a') as f:
        f.write('1 2 3 ship 0\n')
    with pytest.raises(ValueError, match=r'P0003\.txt:58: expected 8 corner'):
        _dota(dst)


def test_image_without_label_file(shared_data, tmp_path):
    dst = _dota_copy(shared_data, tmp_path)
    (dst / 'images' / 'P9999.png').write_bytes(b'')
    ds = _dota(dst)
    assert [d['img_id'] for d in infos(ds)] == ['P0003', 'P0004']
    (note, ) = ds.load_warnings
    assert 'P9999.png' in note and 'no label file' in note
    with pytest.raises(FileNotFoundError, match='P9999.png'):
        _dota(dst, on_missing_ann='error')


def test_label_file_without_image(shared_data, tmp_path):
    dst = _dota_copy(shared_data, tmp_path)
    (dst / 'images' / 'P0004.png').unlink()
    with pytest.raises(FileNotFoundError,
                       match=r'P0004\.txt: its image .*P0004\.png'):
        _dota(dst)


def test_dior_bad_input(shared_data, tmp_path):
    src = shared_data / 'rotated' / 'dior'
    dst = tmp_path / 'dior'
    shutil.copytree(src, dst)
    ann = dst / 'Annotations' / 'Oriented Bounding Boxes'
    (dst / 'ImageSets').mkdir()
    (dst / 'ImageSets' / 'ids.txt').write_text('00001\n00002\n')
    kw = dict(type='S5DIORDataset', data_root=str(dst),
              ann_file='ImageSets/ids.txt',
              data_prefix=dict(img_path='JPEGImages'))
    ds = build(**kw)  # 00002 has no XML: skipped, named
    assert [d['img_id'] for d in infos(ds)] == ['00001']
    assert '00002.xml' in ds.load_warnings[0]
    with pytest.raises(FileNotFoundError, match='00002.xml'):
        build(on_missing_ann='error', **kw)

    xml = (ann / '00001.xml').read_text()
    (ann / '00001.xml').write_text(
        xml.replace('golffield', 'GolfField'))  # case is not a class
    assert infos(build(**kw))[0]['instances'][0]['bbox_label'] == 9
    (ann / '00001.xml').write_text(xml.replace('golffield', 'ufo'))
    with pytest.raises(KeyError, match=r"00001\.xml: object 0 \('ufo'\): "
                       "class 'ufo' is not a class"):
        build(**kw)
    assert infos(build(on_unknown_class='skip', **kw))[0]['instances'] == []

    flat = xml.replace('<y_right_bottom>672', '<y_right_bottom>237').replace(
        '<y_left_bottom>672', '<y_left_bottom>237')
    (ann / '00001.xml').write_text(flat)
    ds = build(**kw)
    assert infos(ds)[0]['instances'] == []
    (note, ) = [w for w in ds.load_warnings if 'degenerate polygon' in w]
    assert '00001.xml: object 0' in note
