"""Each tool changes exactly the voxels it should; locks hold; undo/redo is byte-exact."""
import numpy as np
import pytest

from core.editing import History, brush, fill_holes, flood_fill, grow_shrink, merge, remove_islands, smooth
from core.geometry import Geometry
from core.labels import LabelMap


def _map(shape=(20, 30, 40), spacing=(0.5, 1.0, 2.0)):
    geo = Geometry.for_array_shape(shape, spacing)
    return LabelMap(np.zeros(shape, np.uint8), geo)


def test_brush_sphere_and_disc_sized_in_mm():
    lm = _map()
    e = brush(lm, (20, 15, 10), 4.0, 1)  # spacing x 0.5, y 1, z 2 mm
    k, j, i = np.nonzero(lm.array)
    d2 = ((i - 20) * 0.5) ** 2 + ((j - 15) * 1.0) ** 2 + ((k - 10) * 2.0) ** 2
    assert d2.max() <= 16 + 1e-9
    zz, yy, xx = np.mgrid[:20, :30, :40]
    expected = ((xx - 20) * 0.5) ** 2 + ((yy - 15) * 1.0) ** 2 + ((zz - 10) * 2.0) ** 2 <= 16
    np.testing.assert_array_equal(lm.array == 1, expected)
    assert e.summary() == {1: {"added": int(expected.sum()), "removed": 0}}
    disc = _map()
    brush(disc, (20, 15, 10), 4.0, 2, plane_axis=2)  # axial disc: only slice z = 10
    assert set(np.unique(np.nonzero(disc.array)[0])) == {10}


def test_threshold_painting_and_erase():
    lm = _map()
    image = np.zeros(lm.array.shape, np.float32)
    image[:, :, 20:] = 100
    brush(lm, (20, 15, 10), 6.0, 1, image=image, intensity_range=(50, 150))
    painted = lm.array == 1
    assert painted.any() and not painted[:, :, :20].any()
    brush(lm, (22, 15, 10), 2.0, 1, erase=True)
    assert lm.array[10, 15, 22] == 0 and lm.array[10, 15, 28] == 1


def test_locked_segments_are_never_overwritten():
    lm = _map()
    lm.array[8:12, 10:20, 15:25] = 3
    locked_before = lm.array == 3
    brush(lm, (20, 15, 10), 8.0, 1, locked={3})
    assert np.array_equal(lm.array == 3, locked_before) and (lm.array == 1).any()
    assert grow_shrink(lm, 1, 3.0, locked={3}) is None or np.array_equal(lm.array == 3, locked_before)


def test_flood_fill_fill_holes_islands():
    lm = _map()
    image = np.zeros(lm.array.shape, np.float32)
    image[5:15, 5:25, 5:35] = 100
    image[5:15, 20:25, 30:35] = 200
    flood_fill(lm, (10, 10, 10), 1, image, tolerance=10)
    expected = image == 100
    np.testing.assert_array_equal(lm.array == 1, expected)
    lm.array[8:10, 10:12, 10:12] = 0  # a hole
    fill_holes(lm, 1)
    assert lm.array[9, 11, 11] == 1
    lm.array[0:2, 0:2, 0:2] = 1  # a small island
    e = remove_islands(lm, 1)
    assert lm.array[0, 0, 0] == 0 and e.summary()[1] == {"added": 0, "removed": 8}
    lm.array[0:2, 0:2, 0:2] = 1
    remove_islands(lm, 1, min_ml=1e-3 * 0.5 * 1 * 2 * 9)  # 8 voxels = 8 * 1 mm3 < 9 mm3
    assert lm.array[0, 0, 0] == 0 and lm.array[10, 10, 10] == 1


def test_grow_shrink_and_smooth_in_mm():
    lm = _map(spacing=(1.0, 1.0, 1.0))
    lm.array[8:12, 10:20, 15:25] = 1
    n = (lm.array == 1).sum()
    grow_shrink(lm, 1, 1.0)
    assert (lm.array == 1).sum() > n and lm.array[12, 15, 20] == 1 and lm.array[13, 15, 20] == 0
    grow_shrink(lm, 1, -1.0)
    assert (lm.array == 1).sum() == n
    lm.array[10, 5:10, 20] = 1  # a thin spur
    smooth(lm, 1, 1.0)
    assert lm.array[10, 6, 20] == 0


def test_undo_redo_is_byte_exact_after_long_random_sequences():
    rng = np.random.default_rng(0)
    lm = _map((16, 24, 24), (1.0, 1.0, 1.5))
    image = rng.normal(0, 1, lm.array.shape).astype(np.float32)
    hist = History(lm)
    snapshots = [lm.array.copy()]
    for step in range(150):
        c = rng.uniform(0, 1, 3) * (np.asarray(lm.geometry.size) - 1)
        op = rng.integers(0, 6)
        v = int(rng.integers(1, 4))
        if op == 0:
            e = brush(lm, c, rng.uniform(1, 5), v, plane_axis=int(rng.integers(0, 3)) if rng.random() < .5 else None)
        elif op == 1:
            e = brush(lm, c, rng.uniform(1, 5), v, erase=True)
        elif op == 2:
            e = grow_shrink(lm, v, float(rng.choice([-1.5, 1.5])))
        elif op == 3:
            e = remove_islands(lm, v)
        elif op == 4:
            e = merge(lm, "stroke", [brush(lm, c + d, 2.0, v) for d in rng.normal(0, 2, (4, 3))])
        else:
            e = smooth(lm, v, 1.0, locked={int(rng.integers(1, 4))})
        if hist.push(e) is not None:
            snapshots.append(lm.array.copy())
    assert len(hist.done) == len(snapshots) - 1 > 50
    for snap in reversed(snapshots[:-1]):
        hist.undo()
        assert np.array_equal(lm.array, snap)
    for snap in snapshots[1:]:
        hist.redo()
        assert np.array_equal(lm.array, snap)
    hist.undo()
    hist.push(brush(lm, (5, 5, 5), 2.0, 1))
    assert hist.redo() is None  # a new edit clears the redo stack


def test_history_memory_is_proportional_to_changed_voxels():
    lm = _map((100, 256, 256), (1, 1, 1))
    hist = History(lm)
    for n in range(200):
        hist.push(brush(lm, (20 + n % 200, 128, 50), 2.0, 1 + n % 3, plane_axis=2))
    assert hist.nbytes < 200 * 2 * 5 * 5 * 1 * 2  # a few dozen voxels per dab, not 6.5 MB per edit


def test_interpolation_between_drawn_slices():
    from core.editing import interpolate_slices

    lm = _map((11, 40, 40), (1.0, 1.0, 1.0))
    yy, xx = np.mgrid[:40, :40]
    lm.array[0][(yy - 20) ** 2 + (xx - 20) ** 2 <= 4 ** 2] = 1   # radius 4 on slice 0
    lm.array[10][(yy - 20) ** 2 + (xx - 20) ** 2 <= 12 ** 2] = 1  # radius 12 on slice 10
    lm.array[5, 0:3, 0:3] = 2  # another segment stays
    e = interpolate_slices(lm, 1)
    assert e is not None and lm.array[5, 0, 0] == 2
    for k in range(1, 10):
        r = np.sqrt((lm.array[k] == 1).sum() / np.pi)
        assert abs(r - (4 + 8 * k / 10)) < 1.0, (k, r)  # radius grows linearly between the drawings
