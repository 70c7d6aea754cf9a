"""Dataset converters: real iSAID / LoveDA samples, synthetic ISPRS and
OpenEarthMap release archives. Expected values come from independent
readings (PIL, MMSeg's palettes), not from the converters' own tables."""
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import s5_mm  # noqa: F401
from mmseg.datasets import ISPRSDataset, iSAIDDataset

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'
REPO = Path(__file__).resolve().parents[2]
CONV = REPO / 'tools' / 'dataset_converters'
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


def load_tool(name):
    """A converter script as a module; ``_common`` under the name the
    scripts import (registered so worker processes can unpickle tasks)."""
    for mod, fname in (('_common', '_common'),
                       (f'dataset_converter_{name}', name)):
        if mod not in sys.modules:
            spec = importlib.util.spec_from_file_location(
                mod, CONV / f'{fname}.py')
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod] = module
            spec.loader.exec_module(module)
    return sys.modules[f'dataset_converter_{name}']


def rgb(path):
    return np.array(Image.open(path).convert('RGB'))


def ids_from_palette(colour_mask, palette, first_id=0):
    """Independent colour decoding: a dict lookup per distinct colour."""
    lut = {tuple(c): i + first_id for i, c in enumerate(palette)}
    code = colour_mask.astype(np.int64) @ np.array([65536, 256, 1])
    uniq, inv = np.unique(code, return_inverse=True)
    vals = np.array([lut[(u >> 16, u >> 8 & 255, u & 255)]  # KeyError:
                     for u in uniq.tolist()])  # a colour outside the code
    return vals[inv.ravel()].reshape(colour_mask.shape[:2])


# iSAID -----------------------------------------------------------------------
def test_isaid_real_sample_patches_match_colour_code(shared_data, tmp_path):
    isaid = load_tool('isaid')
    src = shared_data / 'isaid_sample'
    with pytest.raises(FileNotFoundError, match='P0002.png'):
        isaid.convert_isaid(str(src), str(tmp_path / 'x'))  # image missing
    out = tmp_path / 'out'
    counts = isaid.convert_isaid(str(src), str(out), skip_incomplete=True)
    palette = iSAIDDataset.METAINFO['palette']
    assert len(palette) == 16
    img = rgb(src / 'train/images/P0005.png')
    lab = ids_from_palette(
        rgb(src / 'train/images/P0005_instance_color_RGB.png'), palette)
    h, w = lab.shape
    assert (h, w) == (977, 884)
    # devkit windows: 800 every 600, the last moved back to the border
    ys, xs = [0, h - 800], [0, w - 800]
    names = sorted(f'P0005_{y}_{y + 800}_{x}_{x + 800}' for y in ys
                   for x in xs)
    assert sorted(p[:-4] for p in os.listdir(out / 'img_dir/train')) == names
    for y in ys:
        for x in xs:
            stem = f'P0005_{y}_{y + 800}_{x}_{x + 800}'
            got = np.array(Image.open(
                out / f'ann_dir/train/{stem}_instance_color_RGB.png'))
            np.testing.assert_array_equal(got, lab[y:y + 800, x:x + 800])
            np.testing.assert_array_equal(
                rgb(out / f'img_dir/train/{stem}.png'),
                img[y:y + 800, x:x + 800])
    assert len(np.unique(lab)) > 2  # real classes, not only background
    assert counts['train'] == 4 and counts['val'] > 0 and counts['test'] > 0
    assert not (out / 'ann_dir/test').exists()
    # the patches read back through MMSeg's iSAID dataset, ids unchanged
    ds = iSAIDDataset(data_root=str(out),
                      data_prefix=dict(img_path='img_dir/val',
                                       seg_map_path='ann_dir/val'),
                      pipeline=LOAD)
    assert len(ds) == counts['val']
    info = ds[0]
    name = Path(info['img_path']).stem.split('_')
    y0, y1, x0, x1 = map(int, name[1:5])
    val_lab = ids_from_palette(
        rgb(src / f'val/images/{name[0]}_instance_color_RGB.png'), palette)
    np.testing.assert_array_equal(info['gt_seg_map'],
                                  val_lab[y0:y1, x0:x1])


def test_isaid_s5_quadrants_pad_small_images(shared_data, tmp_path):
    isaid = load_tool('isaid')
    src = shared_data / 'isaid_sample'
    out = tmp_path / 'out'
    counts = isaid.convert_isaid(str(src), str(out), splits=['train'],
                                 patch_size=1024, quadrants=True,
                                 skip_incomplete=True)
    assert counts == {'train': 4}  # one padded 1024 patch -> 4 quadrants
    lab = ids_from_palette(
        rgb(src / 'train/images/P0005_instance_color_RGB.png'),
        iSAIDDataset.METAINFO['palette'])
    full = np.full((1024, 1024), 255, np.uint8)
    full[:977, :884] = lab
    img = np.zeros((1024, 1024, 3), np.uint8)
    img[:977, :884] = rgb(src / 'train/images/P0005.png')
    for y in (0, 512):
        for x in (0, 512):
            stem = f'P0005_{y}_{y + 512}_{x}_{x + 512}'
            np.testing.assert_array_equal(
                np.array(Image.open(
                    out / f'ann_dir/train/{stem}_instance_color_RGB.png')),
                full[y:y + 512, x:x + 512])
            np.testing.assert_array_equal(
                rgb(out / f'img_dir/train/{stem}.png'),
                img[y:y + 512, x:x + 512])


def _isaid_zip_release(root, mask_rgb):
    """A release in its download form: zips under train/."""
    img = np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8)
    tmp = root / 'tmp'
    tmp.mkdir(parents=True)
    Image.fromarray(img).save(tmp / 'P0001.png')
    Image.fromarray(mask_rgb).save(tmp / 'P0001_instance_color_RGB.png')
    for sub, arc, f in (('images', 'part1.zip', 'P0001.png'),
                        ('Semantic_masks', 'images.zip',
                         'P0001_instance_color_RGB.png')):
        (root / 'train' / sub).mkdir(parents=True)
        with zipfile.ZipFile(root / 'train' / sub / arc, 'w') as zf:
            zf.write(tmp / f, f'images/{f}')
    return img


def test_isaid_zips_and_unknown_colours(tmp_path):
    isaid = load_tool('isaid')
    palette = iSAIDDataset.METAINFO['palette']
    mask = np.array(palette, np.uint8)[np.arange(40 * 50).reshape(40, 50)
                                       % 16]
    mask[3, 4] = (1, 2, 3)  # not a class colour
    img = _isaid_zip_release(tmp_path / 'src', mask)
    with pytest.raises(ValueError, match=r'P0001_instance_color_RGB.png: 1 '
                       r'pixels .*\(1, 2, 3\) x1'):
        isaid.convert_isaid(str(tmp_path / 'src'), str(tmp_path / 'o1'),
                            splits=['train'], patch_size=32, overlap=8)
    out = tmp_path / 'o2'
    isaid.convert_isaid(str(tmp_path / 'src'), str(out), splits=['train'],
                        patch_size=32, overlap=8, unknown_colour='ignore',
                        nproc=2)
    exp = np.arange(40 * 50).reshape(40, 50) % 16
    exp[3, 4] = 255
    # windows: y {0, 8}, x {0, 18} (stride 24, the last one at the border)
    for y, x in ((0, 0), (8, 18)):
        stem = f'P0001_{y}_{y + 32}_{x}_{x + 32}'
        np.testing.assert_array_equal(
            np.array(Image.open(
                out / f'ann_dir/train/{stem}_instance_color_RGB.png')),
            exp[y:y + 32, x:x + 32])
        np.testing.assert_array_equal(rgb(out / f'img_dir/train/{stem}.png'),
                                      img[y:y + 32, x:x + 32])
    assert len(os.listdir(out / 'img_dir/train')) == 4
    with pytest.raises(FileNotFoundError, match='val'):
        isaid.convert_isaid(str(tmp_path / 'src'), str(out), splits=['val'])
    with pytest.raises(ValueError, match='overlap'):
        isaid.convert_isaid(str(tmp_path / 'src'), str(out), patch_size=32,
                            overlap=32)


# LoveDA ----------------------------------------------------------------------
def test_loveda_real_sample_zip_and_folder(shared_data, tmp_path):
    loveda = load_tool('loveda')
    src = shared_data / 'loveda_sample'
    # Train as the release zip, Val as the extracted folder
    rel = tmp_path / 'release'
    rel.mkdir()
    with zipfile.ZipFile(rel / 'Train.zip', 'w') as zf:
        for p in sorted((src / 'Train').rglob('*.png')):
            zf.write(p, str(p.relative_to(src)))
    os.symlink(src / 'Val', rel / 'Val')
    out = tmp_path / 'out'
    counts = loveda.convert_loveda(str(rel), str(out), ['train', 'val'],
                                   ['rural'], nproc=2)
    assert counts == {'train': 2, 'val': 1}
    for split, folder, n in (('train', 'Train', 0), ('train', 'Train', 1),
                             ('val', 'Val', 2)):
        for kind, sub in (('img_dir', 'images_png'), ('ann_dir', 'masks_png')):
            np.testing.assert_array_equal(
                np.array(Image.open(out / kind / split / f'{n}.png')),
                np.array(Image.open(src / folder / 'Rural' / sub /
                                    f'{n}.png')))
    assert (out / 'train_rural.txt').read_text() == '0\n1\n'
    from s5_mm.datasets.loveda import S5LoveDADataset
    ds = S5LoveDADataset(data_root=str(out),
                         data_prefix=dict(img_path='img_dir/train',
                                          seg_map_path='ann_dir/train'),
                         pipeline=LOAD)
    raw = np.array(Image.open(src / 'Train/Rural/masks_png/1.png'))
    np.testing.assert_array_equal(
        ds[1]['gt_seg_map'], np.where(raw == 0, 255, raw.astype(int) - 1))
    with pytest.raises(FileNotFoundError, match='Test.zip'):
        loveda.convert_loveda(str(rel), str(out), ['test'], ['rural'])
    with pytest.raises(FileNotFoundError, match='Urban/images_png'):
        loveda.convert_loveda(str(rel), str(out), ['val'], ['urban'])


def test_loveda_command_line(shared_data, tmp_path):
    out = tmp_path / 'out'
    res = subprocess.run(
        [sys.executable, str(CONV / 'loveda.py'),
         str(shared_data / 'loveda_sample'), '-o', str(out), '--splits',
         'val', '--domains', 'rural', '--nproc', '1'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out / 'ann_dir/val')) == ['2.png']
    assert "images written: {'val': 1}" in res.stdout


# ISPRS -----------------------------------------------------------------------
def _isprs_colours(ids):
    """MMSeg converter ids -> ISPRS colours: 0 black, 1..6 the palette of
    MMSeg's ISPRS dataset (RGB)."""
    table = np.array([[0, 0, 0]] + ISPRSDataset.METAINFO['palette'],
                     np.uint8)
    return table[ids]


def _write_tile(path, arr_rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr_rgb[..., ::-1]))


def _zip_folder(folder, archive):
    with zipfile.ZipFile(archive, 'w') as zf:
        for p in sorted(folder.rglob('*')):
            if p.is_file():
                zf.write(p, str(p.relative_to(folder)))


def make_vaihingen(root, areas, size=(300, 420)):
    rng = np.random.default_rng(1)
    tiles = {}
    for a in areas:
        img = rng.integers(0, 255, (*size, 3), np.uint8)
        ids = rng.integers(0, 7, size)
        _write_tile(root / 'img/top' / f'top_mosaic_09cm_{a}.tif', img)
        # a same-named full label outside top/ must not be taken as image
        _write_tile(root / 'img/gts_for_participants' /
                    f'top_mosaic_09cm_{a}.tif', _isprs_colours(ids))
        _write_tile(root / 'lab' / f'top_mosaic_09cm_{a}_noBoundary.tif',
                    _isprs_colours(ids))
        tiles[a] = (img, ids)
    src = root / 'src'
    src.mkdir()
    v = load_tool('vaihingen')
    _zip_folder(root / 'img', src / v.IMAGE_ARCHIVE)
    _zip_folder(root / 'lab', src / v.ERODED_ARCHIVE)
    return src, tiles


def test_vaihingen_synthetic_release(tmp_path):
    v = load_tool('vaihingen')
    src, tiles = make_vaihingen(tmp_path, ['area1', 'area2', 'area9'])
    out = tmp_path / 'out'
    splits = {'train': ['area1'], 'val': ['area2']}
    counts = v.convert_vaihingen(str(src), str(out), clip_size=256,
                                 stride=128, splits=splits, nproc=2)
    # 300 x 420, crop 256 every 128: y {0, 44}, x {0, 128, 164}
    assert counts == {'train': 6, 'val': 6}
    boxes = [(x, y) for y in (0, 44) for x in (0, 128, 164)]
    assert sorted(os.listdir(out / 'ann_dir/val')) == sorted(
        f'area2_{x}_{y}_{x + 256}_{y + 256}.png' for x, y in boxes)
    img, ids = tiles['area1']
    for x, y in boxes:
        name = f'area1_{x}_{y}_{x + 256}_{y + 256}.png'
        np.testing.assert_array_equal(
            np.array(Image.open(out / 'ann_dir/train' / name)),
            ids[y:y + 256, x:x + 256])
        np.testing.assert_array_equal(rgb(out / 'img_dir/train' / name),
                                      img[y:y + 256, x:x + 256])
    # end to end: S5's 5 classes, clutter (6) and undefined (0) -> 255
    from s5_mm.datasets.isprs import S5VaihingenDataset
    ds = S5VaihingenDataset(data_root=str(out),
                            data_prefix=dict(img_path='img_dir/train',
                                             seg_map_path='ann_dir/train'),
                            pipeline=LOAD)
    first = ds[0]
    x, y = map(int, Path(first['img_path']).stem.split('_')[1:3])
    crop = ids[y:y + 256, x:x + 256]
    np.testing.assert_array_equal(
        first['gt_seg_map'],
        np.where((crop == 0) | (crop == 6), 255, crop - 1))


def test_vaihingen_bad_inputs(tmp_path):
    v = load_tool('vaihingen')
    src, tiles = make_vaihingen(tmp_path, ['area1'], size=(40, 40))
    with pytest.raises(FileNotFoundError, match='label for tile area2'):
        v.convert_vaihingen(str(src), str(tmp_path / 'o'), 32, 16,
                            splits={'train': ['area1', 'area2']})
    with pytest.raises(FileNotFoundError, match='ground_truth_COMPLETE'):
        v.convert_vaihingen(str(src), str(tmp_path / 'o'), full_labels=True)
    # a colour outside the ISPRS code
    lab = tmp_path / 'lab' / 'top_mosaic_09cm_area1_noBoundary.tif'
    colours = _isprs_colours(tiles['area1'][1])
    colours[0, 0] = (10, 20, 30)
    _write_tile(lab, colours)
    os.remove(src / v.ERODED_ARCHIVE)
    _zip_folder(tmp_path / 'lab', src / v.ERODED_ARCHIVE)
    with pytest.raises(ValueError, match=r'noBoundary.tif: 1 pixels .*'
                       r'\(10, 20, 30\)'):
        v.convert_vaihingen(str(src), str(tmp_path / 'o'), 32, 16,
                            splits={'train': ['area1']})
    v.convert_vaihingen(str(src), str(tmp_path / 'o'), 32, 16,
                        splits={'train': ['area1']}, unknown_colour='ignore')
    crop = np.array(Image.open(tmp_path / 'o/ann_dir/train/area1_0_0_32_32'
                               '.png'))
    assert crop[0, 0] == 0
    np.testing.assert_array_equal(crop.ravel()[1:],
                                  tiles['area1'][1][:32, :32].ravel()[1:])


def test_potsdam_extracted_folders_and_padding(tmp_path):
    p = load_tool('potsdam')
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (200, 300, 3), np.uint8)
    ids = rng.integers(0, 7, (200, 300))
    src = tmp_path / 'src'
    _write_tile(src / '2_Ortho_RGB' / 'top_potsdam_2_10_RGB.tif', img)
    _write_tile(src / '5_Labels_all_noBoundary' /
                'top_potsdam_2_10_label_noBoundary.tif', _isprs_colours(ids))
    out = tmp_path / 'out'
    counts = p.convert_potsdam(str(src), str(out), clip_size=256, stride=128,
                               splits={'train': ['2_10'], 'val': []})
    # height 200 < 256: padded (image 0, label 0 = undefined); x {0, 44}
    assert counts == {'train': 2, 'val': 0}
    for x in (0, 44):
        name = f'2_10_{x}_0_{x + 256}_256.png'
        lab = np.array(Image.open(out / 'ann_dir/train' / name))
        np.testing.assert_array_equal(lab[:200], ids[:, x:x + 256])
        assert (lab[200:] == 0).all()
        im = rgb(out / 'img_dir/train' / name)
        np.testing.assert_array_equal(im[:200], img[:, x:x + 256])
        assert (im[200:] == 0).all()
    with pytest.raises(FileNotFoundError, match='3_Ortho_IRRG'):
        p.convert_potsdam(str(src), str(out), image_archive='3_Ortho_IRRG.zip')


# OpenEarthMap ----------------------------------------------------------------
def make_oem_zip(root):
    rng = np.random.default_rng(3)
    rel = root / 'OpenEarthMap_wo_xBD'
    tiles = {}
    for city, n, with_img, with_lab in (('aachen', 1, True, True),
                                        ('aachen', 2, True, True),
                                        ('aachen', 3, True, False),
                                        ('el_rodeo', 1, False, True)):
        name = f'{city}_{n}'
        img = rng.integers(0, 255, (24, 20, 3), np.uint8)
        lab = rng.integers(0, 9, (24, 20)).astype(np.uint8)
        if with_img:
            _write_tile(rel / city / 'images' / f'{name}.tif', img)
        if with_lab:
            (rel / city / 'labels').mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(rel / city / 'labels' / f'{name}.tif'),
                               lab)
        tiles[name] = (img, lab)
    (rel / 'train.txt').write_text('aachen_1.tif\nel_rodeo_1.tif\n')
    (rel / 'val.txt').write_text('aachen_2.tif\n')
    (rel / 'test.txt').write_text('aachen_3.tif\n')
    (rel / 'xbd_files.csv').write_text(
        'guatemala-volcano_00000000_pre_disaster.png,el_rodeo_1.tif\n')
    _zip_folder(root, root.parent / 'OpenEarthMap.zip')
    return root.parent / 'OpenEarthMap.zip', tiles


def test_openearthmap_zip_without_xbd(tmp_path):
    oem = load_tool('openearthmap')
    archive, tiles = make_oem_zip(tmp_path / 'oem')
    out = tmp_path / 'out'
    counts = oem.convert_openearthmap(str(archive), str(out), nproc=2)
    assert counts == {'train': 1, 'val': 1, 'test': 1}
    assert (out / 'xbd_excluded.txt').read_text() == 'el_rodeo_1\n'
    for split, name in (('train', 'aachen_1'), ('val', 'aachen_2')):
        img, lab = tiles[name]
        np.testing.assert_array_equal(
            rgb(out / 'img_dir' / split / f'{name}.png'), img)
        np.testing.assert_array_equal(
            np.array(Image.open(out / 'ann_dir' / split / f'{name}.png')),
            lab)
    assert os.listdir(out / 'img_dir/test') == ['aachen_3.png']
    assert not (out / 'ann_dir/test').exists()
    from s5_mm.datasets.openearthmap import OpenEarthMapDataset
    ds = OpenEarthMapDataset(data_root=str(out),
                             data_prefix=dict(img_path='img_dir/val',
                                              seg_map_path='ann_dir/val'),
                             pipeline=LOAD)
    np.testing.assert_array_equal(ds[0]['gt_seg_map'], tiles['aachen_2'][1])
    # kept xBD tiles need their images
    with pytest.raises(FileNotFoundError, match=r'el_rodeo_1.tif \(image\)'):
        oem.convert_openearthmap(str(archive), str(tmp_path / 'o2'),
                                 keep_xbd=True)
    with pytest.raises(FileNotFoundError, match='train.txt'):
        oem.convert_openearthmap(str(tmp_path / 'out'), str(tmp_path / 'o3'))
