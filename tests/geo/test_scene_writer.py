"""Model-free merging of window logits into GeoTIFFs: band by band with
spilled halos equals a whole-scene accumulator computed in memory."""
import numpy as np
import pytest
import rasterio

from s5_mm.geo.raster_stack import RasterStack
from s5_mm.geo.scene_writer import (CLASS_NODATA, BandAccumulator, HaloSpill,
                                    SceneOutputs, WindowGrid)


def window_logits(field, grid, i, k):
    """Field crop plus a constant per window, so averaging shows."""
    r, c = grid.rows[i], grid.cols[k]
    crop = field[:, r:r + grid.tile_h, c:c + grid.tile_w]
    return crop + 0.25 * ((i * 7 + k * 3) % 5)


def reference(field, grid, invalid):
    acc = np.zeros_like(field)
    cnt = np.zeros(field.shape[1:], np.float32)
    for i in range(len(grid.rows)):
        for k in range(len(grid.cols)):
            (ra, rz), (ca, cz) = grid.row_bounds[i], grid.col_bounds[k]
            r, c = grid.rows[i], grid.cols[k]
            lg = window_logits(field, grid, i, k)
            acc[:, ra:rz, ca:cz] += lg[:, ra - r:rz - r, ca - c:cz - c]
            cnt[ra:rz, ca:cz] += 1
    mean = acc / cnt
    cls = mean.argmax(0).astype(np.uint8)
    cls[invalid] = CLASS_NODATA
    top2 = np.sort(mean, axis=0)[-2:]
    return cls, top2[1] - top2[0]


def assert_classes(cls, field, grid, invalid):
    """Classes equal to the reference's where its top two mean logits are
    more than 1e-5 apart: at band seams the float32 sums run in another
    order (1.2e-7 apart), which may flip a closer pair."""
    ref, gap = reference(field, grid, invalid)
    decided = invalid | (gap > 1e-5)
    assert decided.mean() > 0.999
    np.testing.assert_array_equal(cls[decided], ref[decided])


def merge_bands(stack, grid, field, invalid, out, tmp_path):
    """The band loop of s5_mm.apis.inference, fed with known logits."""
    classes = []
    with SceneOutputs(stack, out, write_confidence=True,
                      block_size=64) as outputs:
        spill_in = None
        for j in range(grid.num_bands):
            spill_out = (HaloSpill(str(tmp_path / f'b{j}.bin'))
                         if j + 1 < grid.num_bands else None)
            band = BandAccumulator(grid, j, outputs, spill_in, spill_out)
            preds = [((i, k), window_logits(field, grid, i, k),
                      invalid[grid.rows[i]:grid.rows[i] + grid.tile_h,
                              grid.cols[k]:grid.cols[k] + grid.tile_w])
                     for i, k in grid.band_windows(j)]
            classes.append(band.merge(preds))
            if spill_in is not None:
                spill_in.close()
            if spill_out is not None:
                spill_out.rewind()
            spill_in = spill_out
    return classes


@pytest.mark.parametrize('merge', ['average', 'center'])
def test_bands_and_halos_equal_whole_scene_merge(shared_data, tmp_path,
                                                 merge):
    path = shared_data / 'geotiff' / 'rmnp-rgb.tif'  # 485 x 373
    with RasterStack(path) as stack:
        _, inv = stack.read()
        invalid = inv.any(0)
        grid = WindowGrid.build(stack.height, stack.width, 80, 56, merge,
                                chunk_width=100, block_size=64)
        assert grid.band_width == 128 and grid.num_bands == 4
        # every window belongs to exactly one band
        owned = sorted(w for j in range(grid.num_bands)
                       for w in grid.band_windows(j))
        assert owned == [(i, k) for i in range(len(grid.rows))
                         for k in range(len(grid.cols))]
        rng = np.random.default_rng(0)
        field = rng.normal(size=(4, stack.height, stack.width)).astype(
            np.float32)
        out = tmp_path / 'cls.tif'
        assert merge_bands(stack, grid, field, invalid, out,
                           tmp_path) == [4] * 4
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            'cls.tif', 'cls_confidence.tif']  # spill files removed
        with rasterio.open(out) as dst:
            cls = dst.read(1)
            assert dst.transform == stack.transform
            assert dst.block_shapes[0] == (64, 64)
    assert_classes(cls, field, grid, invalid)


def test_band_owning_no_window_gets_the_halo(tmp_path):
    src = tmp_path / 'scene.tif'
    with rasterio.open(src, 'w', driver='GTiff', width=300, height=70,
                       count=1, dtype='uint8',
                       transform=rasterio.transform.from_origin(
                           500, 900, 2, 2)) as dst:
        dst.write(np.ones((1, 70, 300), np.uint8))
    with RasterStack(src) as stack:
        grid = WindowGrid.build(70, 300, 64, 48, chunk_width=256,
                                block_size=64)
        # windows start at columns 0 .. 192 and 236: none in [256, 300)
        assert grid.cols[-1] == 236 and grid.band_windows(1) == []
        field = np.random.default_rng(1).normal(size=(3, 70, 300)).astype(
            np.float32)
        invalid = np.zeros((70, 300), bool)
        out = tmp_path / 'cls.tif'
        assert merge_bands(stack, grid, field, invalid, out,
                           tmp_path) == [3, None]
        with rasterio.open(out) as dst:
            cls = dst.read(1)
    assert_classes(cls, field, grid, invalid)


def test_bad_merge_mode():
    with pytest.raises(ValueError, match='merge must be one of'):
        WindowGrid.build(10, 10, 4, 2, merge='max')
