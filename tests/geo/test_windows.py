import pytest

from s5_mm.geo.windows import center_bounds, sliding_windows, window_offsets


def test_offsets_match_mmseg_slide_grid():
    # MMSeg: n = max(L - crop + stride - 1, 0) // stride + 1, last shifted in
    assert window_offsets(100, 40, 30, 'shift') == [0, 30, 60]
    assert window_offsets(101, 40, 30, 'shift') == [0, 30, 60, 61]
    assert window_offsets(101, 40, 30, 'pad') == [0, 30, 60, 90]
    assert window_offsets(101, 40, 30, 'drop') == [0, 30, 60]
    assert window_offsets(900, 90, 90, 'pad') == list(range(0, 900, 90))
    assert window_offsets(20, 40, 30, 'shift') == [0]
    assert window_offsets(20, 40, 30, 'drop') == []


def test_bad_arguments():
    with pytest.raises(ValueError, match='edge'):
        window_offsets(10, 4, 2, 'wrap')
    with pytest.raises(ValueError, match='positive'):
        window_offsets(10, 4, 0)
    with pytest.raises(ValueError, match='stride <= tile'):
        center_bounds([0, 50], 40, 90)


def test_center_bounds_partition_axis():
    offs = window_offsets(101, 40, 30, 'shift')
    b = center_bounds(offs, 40, 101)
    assert b == [(0, 35), (35, 65), (65, 80), (80, 101)]
    for (lo, hi), o in zip(b, offs):
        assert o <= lo < hi <= o + 40  # each range lies inside its window


def test_sliding_windows_shapes():
    wins = sliding_windows(50, 120, 64, 48, 'shift')
    assert {(w.height, w.width) for w in wins} == {(50, 64)}
    assert [(w.col_off, w.row_off) for w in wins] == [(0, 0), (48, 0), (56, 0)]
