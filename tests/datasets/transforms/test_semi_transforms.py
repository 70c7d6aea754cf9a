"""S4P pipeline transforms on RGB and 6-band images."""
import numpy as np
import pytest
from mmengine.dataset import Compose

import s5_mm  # noqa: F401
from s5_mm.datasets.transforms.semi_transforms import (
    AddPaddingMask, MultiBandColorJitter, MultiBandGaussianBlur,
    MultiBandGrayscale, resolve_rgb_bands, rgb_to_gray, shift_hue)

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'


def test_resolve_rgb_bands():
    assert resolve_rgb_bands(3, 'auto') == (2, 1, 0)
    assert resolve_rgb_bands(6, 'auto') is None
    assert resolve_rgb_bands(6, (2, 1, 0)) == (2, 1, 0)
    assert resolve_rgb_bands(3, None) is None
    with pytest.raises(ValueError, match='3 band indexes'):
        resolve_rgb_bands(4, (0, 1, 5))


def test_shift_hue_known_colours():
    red = np.array([[1.0, 0.0, 0.0]])
    assert np.allclose(shift_hue(red, 1 / 3), [[0, 1, 0]])
    assert np.allclose(shift_hue(red, -1 / 3), [[0, 0, 1]])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (50, 3))
    assert np.allclose(shift_hue(x, 0.0), x, atol=1e-6)
    assert np.allclose(shift_hue(x, 1.0), x, atol=1e-6)
    # scale free: works on raw digital numbers as on [0, 1]
    assert np.allclose(shift_hue(x * 200, 0.2) / 200, shift_hue(x, 0.2),
                       atol=1e-6)
    # hue rotation keeps value (max) and grey pixels
    assert np.allclose(shift_hue(x, 0.3).max(1), x.max(1))
    grey = np.full((1, 3), 0.4)
    assert np.allclose(shift_hue(grey, 0.25), grey)


def test_add_padding_mask_uses_valid_mask():
    valid = np.ones((4, 5), bool)
    valid[0, 0] = False
    res = AddPaddingMask()(dict(img=np.zeros((4, 5, 6), np.float32),
                                valid_mask=valid))
    assert res['gt_seg_map'].dtype == np.uint8
    assert res['gt_seg_map'][0, 0] == 255 and res['gt_seg_map'].sum() == 255
    assert res['seg_fields'] == ['gt_seg_map']
    with pytest.raises(ValueError, match='valid_mask of x.tif'):
        AddPaddingMask()(dict(img=np.zeros((4, 5, 3)), img_path='x.tif',
                              valid_mask=np.ones((5, 4), bool)))


def test_color_jitter_bands():
    rng = np.random.default_rng(0)
    img = rng.uniform(10, 200, (8, 8, 6)).astype(np.float32)
    # colour-only ops on a 6-band image without rgb_bands: untouched
    res = MultiBandColorJitter(0, 0, 0.5, 0.25, prob=1.0)(dict(img=img.copy()))
    assert np.array_equal(res['img'], img)
    # with rgb_bands, saturation/hue change only those bands
    np.random.seed(0)
    res = MultiBandColorJitter(0, 0, 0.5, 0.25, prob=1.0,
                               rgb_bands=(2, 1, 0))(dict(img=img.copy()))
    assert not np.allclose(res['img'][..., :3], img[..., :3])
    assert np.array_equal(res['img'][..., 3:], img[..., 3:])
    # contrast keeps each band's mean (per-band blend to its mean)
    np.random.seed(0)
    res = MultiBandColorJitter(0, 0.5, 0, 0, prob=1.0)(dict(img=img.copy()))
    assert np.allclose(res['img'].mean((0, 1)), img.mean((0, 1)), rtol=1e-5)
    assert not np.allclose(res['img'], img)
    # brightness is one factor for all bands, drawn from U(0.5, 1.5)
    np.random.seed(0)
    res = MultiBandColorJitter(0.5, 0, 0, 0, prob=1.0)(dict(img=img.copy()))
    ratio = res['img'] / img
    rng = np.random.RandomState(0)  # the draws: apply?, order, factor
    rng.rand(), rng.permutation(4)
    assert np.allclose(ratio, rng.uniform(0.5, 1.5), rtol=1e-5)
    # prob 0: identity
    res = MultiBandColorJitter(prob=0.0)(dict(img=img.copy()))
    assert np.array_equal(res['img'], img)


def jitter_reference(bgr, rng):
    """The documented jitter in float64: torchvision's four operations in
    a random order, contrast around each band's own mean, hue by colorsys,
    the factors drawn from ``rng`` as the transform draws them (np.random,
    in this order), values clipped to [0, 255] after each operation and
    rounded at the end."""
    import colorsys
    assert rng.rand() < 1.0  # prob 1
    x = bgr.astype(np.float64)
    rgb = [2, 1, 0]
    for op in rng.permutation(4):
        if op == 0:
            x = x * rng.uniform(0.5, 1.5)
        elif op == 1:
            c = rng.uniform(0.5, 1.5)
            x = c * x + (1 - c) * x.mean((0, 1))
        elif op == 2:
            s = rng.uniform(0.5, 1.5)
            gray = x[..., rgb] @ [0.299, 0.587, 0.114]
            x[..., rgb] = s * x[..., rgb] + (1 - s) * gray[..., None]
        else:
            d = rng.uniform(-0.25, 0.25)
            for idx in np.ndindex(x.shape[:2]):
                h, s, v = colorsys.rgb_to_hsv(*x[idx][rgb])
                x[idx][rgb] = colorsys.hsv_to_rgb((h + d) % 1.0, s, v)
        x = np.clip(x, 0, 255)
    return np.rint(x).astype(np.uint8)


def test_color_jitter_uint8_rgb_stays_in_range():
    np.random.seed(3)
    img = np.random.randint(0, 256, (16, 16, 3), dtype=np.uint8)
    t = MultiBandColorJitter(prob=1.0)
    clipped = 0
    for k in range(10):
        np.random.seed(100 + k)
        out = t(dict(img=img.copy()))['img']
        assert out.dtype == np.uint8 and out.shape == img.shape
        ref = jitter_reference(img, np.random.RandomState(100 + k))
        # float32 vs float64: a value near .5 may round the other way
        assert np.abs(out.astype(int) - ref).max() <= 1
        assert (out != img).mean() > 0.5
        clipped += int(((ref == 0) | (ref == 255)).sum())
    assert clipped > 0  # the clipping was exercised


def test_grayscale_rgb_and_multiband():
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (4, 4, 3)).astype(np.uint8)
    out = MultiBandGrayscale(prob=1.0)(dict(img=bgr.copy()))['img']
    luma = rgb_to_gray(bgr[..., ::-1].astype(np.float32))
    for c in range(3):
        assert np.abs(out[..., c].astype(float) - luma).max() <= 0.5 + 1e-6
    ms = rng.uniform(0, 1, (4, 4, 6)).astype(np.float32)
    out = MultiBandGrayscale(prob=1.0)(dict(img=ms.copy()))['img']
    assert np.array_equal(out, ms)  # no colour bands: skipped
    out = MultiBandGrayscale(prob=1.0, rgb_bands=(2, 1, 0))(
        dict(img=ms.copy()))['img']
    assert np.allclose(out[..., 0], out[..., 1])
    assert np.allclose(out[..., 1], out[..., 2])
    assert np.array_equal(out[..., 3:], ms[..., 3:])


def test_gaussian_blur_all_bands():
    img = np.zeros((21, 21, 6), np.float32)
    img[10, 10] = 100.0
    np.random.seed(0)
    res = MultiBandGaussianBlur(sigma=(1.0, 1.0), prob=1.0)(dict(img=img))
    out = res['img']
    assert out.shape == img.shape and out.dtype == np.float32
    for c in range(6):
        assert out[10, 10, c] < 100 and out[10, 11, c] > 0
        assert out[..., c].sum() == pytest.approx(100.0, rel=1e-3)
    flat = np.full((8, 8, 5), 7, np.uint8)
    out = MultiBandGaussianBlur(prob=1.0)(dict(img=flat))['img']
    assert out.dtype == np.uint8 and (out == 7).all()


def test_weak_and_strong_views_stay_aligned():
    """Shared geometry before MultiBranch; photometric only on strong."""
    branch_field = ['sup', 'unsup_teacher', 'unsup_student']
    geometric = [
        dict(type='AddPaddingMask'),
        dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
        dict(type='RandomCrop', crop_size=(24, 24)),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='RandomFlip', prob=0.5, direction='vertical'),
        dict(type='RandomRot90', prob=0.5),
    ]
    plain = Compose(geometric + [
        dict(type='mmdet.MultiBranch', branch_field=branch_field,
             unsup_teacher=[dict(type='PackSegInputs')],
             unsup_student=[dict(type='MultiBandColorJitter', prob=0.0),
                            dict(type='PackSegInputs')])
    ])
    strong = Compose(geometric + [
        dict(type='mmdet.MultiBranch', branch_field=branch_field,
             unsup_teacher=[dict(type='PackSegInputs')],
             unsup_student=[dict(type='MultiBandColorJitter', prob=1.0,
                                 rgb_bands=(2, 1, 0)),
                            dict(type='MultiBandGrayscale', prob=0.5,
                                 rgb_bands=(2, 1, 0)),
                            dict(type='MultiBandGaussianBlur', prob=0.5),
                            dict(type='PackSegInputs')])
    ])
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (20, 30, 6)).astype(np.float32)
    np.random.seed(0)
    for _ in range(10):
        out = plain(dict(img=img.copy(), img_shape=img.shape[:2],
                         ori_shape=img.shape[:2]))
        w, s = out['inputs']['unsup_teacher'], out['inputs']['unsup_student']
        assert out['inputs']['sup'] is None
        assert w.shape[0] == 6 and w.shape[1:] == s.shape[1:]
        assert w.shape[1] <= 24 and w.shape[2] <= 24
        assert (w == s).all()
        out = strong(dict(img=img.copy(), img_shape=img.shape[:2],
                          ori_shape=img.shape[:2]))
        mw = out['data_samples']['unsup_teacher'].gt_sem_seg.data
        ms = out['data_samples']['unsup_student'].gt_sem_seg.data
        assert (mw == ms).all()
        assert not (out['inputs']['unsup_teacher'] ==
                    out['inputs']['unsup_student']).all()
