"""DOTA splitter and merger on the shared real DOTA images: windows,
pixels, IoF-kept objects (checked with shapely, independently of the mmcv
op the splitter uses), cut objects marked difficult, and perfect patch
predictions merged back to the original boxes to a pixel."""
import importlib.util
import pickle
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import s5_mm  # noqa: F401
from mmrotate.structures.bbox import qbox2rbox
from s5_mm.datasets.dota import (merge_patch_dets, parse_dota_txt,
                                 parse_patch_name, patch_name)

REPO = Path(__file__).resolve().parents[2]
CLASSES = ('small-vehicle', 'large-vehicle', 'ship', 'harbor')


def load(mod, path):
    if mod not in sys.modules:
        spec = importlib.util.spec_from_file_location(mod, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod] = module
        spec.loader.exec_module(module)
    return sys.modules[mod]


@pytest.fixture(scope='module')
def split_tool():
    load('_common', REPO / 'tools' / 'dataset_converters' / '_common.py')
    return load('dataset_converter_dota_split',
                REPO / 'tools' / 'dataset_converters' / 'dota_split.py')


@pytest.fixture(scope='module')
def merge_tool():
    return load('tool_dota_merge', REPO / 'tools' / 'dota_merge.py')


def one_image(shared_data, tmp_path, name):
    src = shared_data / 'rotated' / 'dota_mini'
    img, ann = tmp_path / 'src' / 'images', tmp_path / 'src' / 'labelTxt'
    img.mkdir(parents=True)
    ann.mkdir(parents=True)
    (img / f'{name}.png').symlink_to(src / 'images' / f'{name}.png')
    (ann / f'{name}.txt').symlink_to(src / 'labelTxt' / f'{name}.txt')
    return str(img), str(ann)


def test_patch_names_round_trip():
    name = patch_name('P0003', 512, 384, 0)
    assert name == 'P0003__512__384___0'
    assert parse_patch_name(name + '.png') == ('P0003', 512, 384, 0)
    assert parse_patch_name('a__b__1024__24___600') == ('a__b', 1024, 24,
                                                        600)
    with pytest.raises(ValueError, match="'P0003_0_0' is not a DOTA patch"):
        parse_patch_name('P0003_0_0')


def test_windows_hand_computed(split_tool):
    # 1147 x 1023, 512 / gap 128 (step 384): x 0, 384, 635; y 0, 384, 511
    w = split_tool.sliding_windows(1147, 1023, [512], [128])
    assert sorted(map(tuple, w[:, :2].tolist())) == sorted(
        (x, y) for x in (0, 384, 635) for y in (0, 384, 511))
    assert ((w[:, 2:] - w[:, :2]) == 512).all()
    # the 1024 / 200 default: x 0, 123; y 0 (the image is 1023 high)
    w = split_tool.sliding_windows(1147, 1023, [1024], [200])
    assert w.tolist() == [[0, 0, 1024, 1024], [123, 0, 1147, 1024]]
    with pytest.raises(ValueError, match='gap 600 must be in'):
        split_tool.sliding_windows(1147, 1023, [512], [600])


def test_split_patches_pixels_and_objects(split_tool, shared_data, tmp_path):
    shapely = pytest.importorskip('shapely.geometry')
    img_dir, ann_dir = one_image(shared_data, tmp_path, 'P0003')
    out = tmp_path / 'out'
    res = split_tool.split_dota([img_dir], str(out), [ann_dir],
                                patch_size=512, gap=128, nproc=1)
    assert (res['images'], res['patches']) == (1, 9)
    image = cv2.imread(img_dir + '/P0003.png')
    objects, _ = parse_dota_txt(ann_dir + '/P0003.txt')
    n_cut = 0
    for f in sorted((out / 'images').iterdir()):
        ori, size, x, y = parse_patch_name(f.name)
        patch = cv2.imread(str(f))
        assert (ori, size, patch.shape) == ('P0003', 512, (512, 512, 3))
        crop = image[y:y + 512, x:x + 512]
        assert np.array_equal(patch[:crop.shape[0], :crop.shape[1]], crop)
        if crop.shape[0] < 512:  # padded with the default value
            assert (patch[crop.shape[0]:] == (104, 116, 124)).all()
        win = shapely.box(x, y, x + 512, y + 512)
        want = []
        for o in objects:
            p = shapely.Polygon(np.reshape(o['poly'], (4, 2)))
            iof = p.intersection(win).area / p.area
            if iof >= 0.7:
                cut = iof < 1 - 1e-4
                want.append((o['name'], 2 if cut else o['difficulty'],
                             tuple(np.subtract(o['poly'], [x, y] * 4))))
                n_cut += cut
        got, _ = parse_dota_txt(str(out / 'labelTxt' / (f.stem + '.txt')))
        assert sorted((g['name'], g['difficulty'], tuple(g['poly']))
                      for g in got) == sorted(want)
    assert n_cut > 0  # some vehicles lie across the patch borders


def test_multi_scale_window_sizes(split_tool, shared_data, tmp_path):
    img_dir, ann_dir = one_image(shared_data, tmp_path, 'P0003')
    out = tmp_path / 'ms'
    split_tool.main(['--img-dirs', img_dir, '--ann-dirs', ann_dir, '-o',
                     str(out), '--patch-size', '512', '--gap', '128',
                     '--rates', '0.5', '1.0', '--nproc', '1'])
    sizes = sorted({parse_patch_name(p.name)[1]
                    for p in (out / 'images').iterdir()})
    assert sizes == [512, 1024]  # rate 0.5: 1024-px windows of the image
    big = cv2.imread(str(out / 'images' / 'P0003__1024__123___0.png'))
    assert big.shape == (1024, 1024, 3)


def test_image_without_label_file_stops_the_split(split_tool, shared_data,
                                                  tmp_path):
    img_dir, ann_dir = one_image(shared_data, tmp_path, 'P0003')
    (Path(img_dir) / 'P0004.png').symlink_to(
        shared_data / 'rotated' / 'dota_mini' / 'images' / 'P0004.png')
    with pytest.raises(FileNotFoundError,
                       match=r'P0004\.png has no label file .*P0004\.txt'):
        split_tool.split_dota([img_dir], str(tmp_path / 'o'), [ann_dir])


# P0706's harbours (up to 598 px) need the 1024 default patches
@pytest.mark.parametrize('name,patch,gap', [('P0003', 512, 128),
                                            ('P0706', 1024, 200)])
def test_merge_of_perfect_patch_predictions_recovers_boxes(
        split_tool, merge_tool, shared_data, tmp_path, name, patch, gap):
    img_dir, ann_dir = one_image(shared_data, tmp_path, name)
    out = tmp_path / 'out'
    res = split_tool.split_dota([img_dir], str(out), [ann_dir],
                                patch_size=patch, gap=gap, nproc=1)
    assert res['patches'] == {'P0003': 9, 'P0706': 4}[name]
    rng = np.random.default_rng(0)
    dump = []
    for txt in sorted((out / 'labelTxt').iterdir()):
        objs, _ = parse_dota_txt(str(txt))
        polys = torch.tensor([o['poly'] for o in objs]).reshape(-1, 8)
        dump.append(dict(
            img_id=txt.stem,
            pred_instances=dict(
                bboxes=qbox2rbox(polys),
                scores=torch.from_numpy(rng.uniform(0.5, 1, len(objs))),
                labels=torch.tensor([CLASSES.index(o['name'])
                                     for o in objs]))))
    # the patches of this image hold every object at least once
    objects, _ = parse_dota_txt(f'{ann_dir}/{name}.txt')
    truth = qbox2rbox(torch.tensor([o['poly'] for o in objects])).numpy()
    labels = np.array([CLASSES.index(o['name']) for o in objects])

    merged = merge_patch_dets(merge_tool.results_from_dump(dump),
                              len(CLASSES))
    assert list(merged) == [name]
    for c in range(len(CLASSES)):
        got, want = merged[name][c], truth[labels == c]
        assert len(got) == len(want), CLASSES[c]
        for box in want:  # every original box, in full-image pixels
            d = np.abs(got[:, :2] - box[:2]).max(1)
            j = int(d.argmin())
            assert d[j] < 1.0
            assert np.abs(got[j, 2:4] - box[2:4]).max() < 1.0

    # the CLI: a tools/test.py --out pickle -> Task1 files + zip
    pkl = tmp_path / 'res.pkl'
    pkl.write_bytes(pickle.dumps(dump))
    task1 = tmp_path / 'Task1'
    merge_tool.main([str(pkl), str(task1), '--classes', *CLASSES])
    lines = {c: (task1 / f'Task1_{c}.txt').read_text().splitlines()
             for c in CLASSES}
    assert sum(map(len, lines.values())) == len(objects)
    for c, rows in lines.items():
        f = [row.split() for row in rows]
        assert all(r[0] == name and len(r) == 10 for r in f)
        # the merged boxes' scores (4 decimals), not any in [0.5, 1]
        want = merged[name][CLASSES.index(c)][:, 5]
        assert sorted(float(r[1]) for r in f) == pytest.approx(
            sorted(want), abs=5.1e-5)
    assert (task1 / 'Task1.zip').is_file()
