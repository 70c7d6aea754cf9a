import numpy as np

from s5_mm.visualization import to_display_rgb


def test_percentile_stretch_per_band_over_valid_pixels():
    ramp = np.arange(101, dtype=np.float32)  # percentiles 2 / 98 -> 2 / 98
    img = np.stack([ramp, 10 * ramp, ramp[::-1]], -1)[None]  # 1 x 101 x 3
    img = np.concatenate([img, np.full((1, 1, 3), 1e6, np.float32)], 1)
    valid = np.ones((1, 102), bool)
    valid[0, -1] = False  # an outlier, left out of the percentiles
    out = to_display_rgb(img, rgb_bands=(1, 0, 2), valid_mask=valid)
    assert out.shape == (1, 102, 3) and out.dtype == np.uint8
    # value 50 of band 0: (50 - 2) * 255 / 96 = 127.5 -> 127
    assert out[0, 50].tolist() == [127, 127, 127]
    assert out[0, 0].tolist() == [0, 0, 255]
    assert out[0, 100].tolist() == [255, 255, 0]
    assert out[0, -1].tolist() == [0, 0, 0]  # invalid: black


def test_single_band_and_missing_bands_repeat_the_last():
    img = np.linspace(0, 1, 50, dtype=np.float32).reshape(5, 10)
    out = to_display_rgb(img, rgb_bands=(0, 1, 2))
    assert (out[..., 0] == out[..., 1]).all() and \
        (out[..., 1] == out[..., 2]).all()
    assert out.min() == 0 and out.max() == 255
