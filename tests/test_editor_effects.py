"""The segment editor's effects (core.editor_effects), each against an independent computation:
brute-force distances for margin and hollow, voxel centres projected one by one for scissors on an
oblique grid, numpy set algebra for the logical operations, shapes known by construction for hole
filling, level tracing and growing from seeds."""
import numpy as np
import pytest

from core import editing
from core import editor_effects as fx
from core.errors import DelineateError
from core.geometry import Geometry
from core.labels import LabelMap


def _map(shape=(12, 20, 24), spacing=(0.5, 1.0, 2.0), direction=None):
    geo = Geometry(tuple(shape[::-1]), spacing, (-5.0, 3.0, 10.0), np.eye(3) if direction is None else direction)
    return LabelMap(np.zeros(shape, np.uint8), geo)


def _oblique_direction(deg=25.0):
    t, s = np.radians(deg), np.radians(10.0)
    rz = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(s), -np.sin(s)], [0, np.sin(s), np.cos(s)]])
    return rz @ rx


def _centres(geo):
    k, j, i = np.indices(geo.shape_zyx)
    return geo.index_to_world(np.stack([i, j, k], axis=-1).astype(float))  # (z, y, x, 3) LPS


def _brute_distance(mask, spacing_zyx, to):
    """Distance in mm from each voxel centre to the nearest voxel centre where ``to`` holds (pairwise)."""
    pts = np.argwhere(np.ones_like(mask)) * spacing_zyx
    targets = np.argwhere(to) * spacing_zyx
    d = np.sqrt(((pts[:, None, :] - targets[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return d.reshape(mask.shape)


def test_fill_holes_on_one_slice_where_3d_finds_none():
    lm = _map()
    lm.array[5, 4:14, 6:18] = 1
    lm.array[5, 6:12, 8:16] = 0  # a ring drawn on slice k = 5: no hole in 3D
    lm.array[5, 8, 10] = 2  # another segment inside the ring stays
    before = lm.array.copy()
    assert editing.fill_holes(lm, 1) is None
    e = fx.fill_holes_2d(lm, 1, plane_axis=2, index=5)
    expected = before.copy()
    expected[5, 6:12, 8:16] = 1
    expected[5, 8, 10] = 2
    np.testing.assert_array_equal(lm.array, expected)
    assert fx.changed_counts(e) == (6 * 8 - 1, 1)
    assert fx.fill_holes_2d(lm, 1, plane_axis=2, index=4) is None  # nothing on that slice
    assert fx.fill_holes_2d(lm, 1, plane_axis=2, index=99) is None
    lm.array[:] = before
    lm.array[8, 4:14, 6:18] = 1  # a second ring-less slab: every slice at once
    lm.array[8, 6:8, 8:10] = 0
    fx.fill_holes_2d(lm, 1, plane_axis=2)
    assert (lm.array[5, 6:12, 8:16] != 0).all() and (lm.array[8, 6:8, 8:10] == 1).all()
    lm.array[:] = before  # a sagittal slice (plane axis x) sees the ring edge-on: nothing enclosed there
    assert fx.fill_holes_2d(lm, 1, plane_axis=0, index=10) is None


def test_level_trace_bright_and_dark_objects():
    lm = _map()
    image = np.full(lm.array.shape, 40.0, np.float32)
    image[:, 3:15, 4:20] = 100.0  # bright square with a darker notch inside (a hole: filled)
    image[:, 7:9, 9:11] = 60.0
    image[:, 16:19, 2:5] = 5.0  # a dark blob
    e = fx.level_trace(lm, image, (12, 5, 6), 1, plane_axis=2)  # click at x=12, y=5 on slice z=6
    expected = np.zeros_like(lm.array)
    expected[6, 3:15, 4:20] = 1
    np.testing.assert_array_equal(lm.array, expected)
    assert e.summary() == {1: {"added": 12 * 16, "removed": 0}}
    fx.level_trace(lm, image, (3, 17, 6), 2, plane_axis=2)
    assert (lm.array == 2).sum() == 9 and (lm.array[6, 16:19, 2:5] == 2).all()
    assert fx.level_trace(lm, image, (50, 5, 6), 1, plane_axis=2) is None  # outside the image
    # a coronal click (plane axis y): the square's column through y = 5
    lm2 = _map()
    fx.level_trace(lm2, image, (12, 5, 6), 1, plane_axis=1)
    expected = np.zeros_like(lm2.array)
    expected[:, 5, 4:20] = 1
    np.testing.assert_array_equal(lm2.array, expected)


@pytest.mark.parametrize("oblique", [False, True])
def test_scissors_against_projected_voxel_centres(oblique):
    lm = _map(direction=_oblique_direction() if oblique else None)
    lm.array[2:10, 3:17, 4:20] = 1
    lm.array[2:4, 3:6, 4:8] = 2
    start = lm.array.copy()
    centres = _centres(lm.geometry)
    z0 = float(centres[6, 10, 12, 2])  # the cut's plane is axial (normal S), through this voxel's centre
    x0, x1, y0, y1 = centres[..., 0].min() + 6.1, centres[..., 0].min() + 20.3, centres[..., 1].min() + 5.2, \
        centres[..., 1].min() + 14.3  # no voxel centre on an edge
    square = np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0]])
    inside = (centres[..., 0] > x0) & (centres[..., 0] < x1) & (centres[..., 1] > y0) & (centres[..., 1] < y1)
    near = np.abs(centres[..., 2] - z0) <= 1.0  # a 2 mm slab
    assert inside.any() and (inside & (start == 1)).any()
    for mode, thickness, expected in (
            ("erase inside", None, np.where(inside & (start == 1), 0, start)),
            ("erase outside", None, np.where(~inside & (start == 1), 0, start)),
            ("fill inside", 2.0, np.where(inside & near, 1, start)),
            ("fill outside", 2.0, np.where(~inside & near, 1, start)),
            ("erase inside", 2.0, np.where(inside & near & (start == 1), 0, start))):
        lm.array[:] = start
        e = fx.scissors(lm, square, (0, 0, 1), mode, 1, thickness)
        np.testing.assert_array_equal(lm.array, expected, err_msg=mode)
        assert e is not None and e.name == "scissors"
    lm.array[:] = start
    fx.scissors(lm, square, (0, 0, 1), "fill inside", 1, None, locked={2})  # segment 2 is locked
    np.testing.assert_array_equal(lm.array == 2, start == 2)
    assert fx.scissors(lm, square[:2], (0, 0, 1), "fill inside", 1) is None
    with pytest.raises(ValueError):
        fx.scissors(lm, square, (0, 0, 1), "cut", 1)


def test_scissors_on_a_sagittal_plane_of_an_anisotropic_grid():
    lm = _map(spacing=(0.7, 1.1, 2.5))
    centres = _centres(lm.geometry)
    x0 = float(centres[0, 0, 9, 0])
    tri = np.array([[x0, 0.2, 10.3], [x0, 25.2, 10.3], [x0, 0.2, 35.3]])  # triangle in the plane x = x0
    fx.scissors(lm, tri, (1, 0, 0), "fill inside", 3, thickness_mm=0.7)
    y, z = centres[..., 1], centres[..., 2]
    expected = (np.abs(centres[..., 0] - x0) <= 0.35) & (y > 0.2) & (z > 10.3) & ((y - 0.2) / 25 + (z - 10.3) / 25 < 1)
    np.testing.assert_array_equal(lm.array == 3, expected)


def test_grow_from_seeds_fills_the_cube_and_its_background():
    lm = _map(shape=(16, 20, 20), spacing=(1.0, 1.0, 1.5))
    rng = np.random.default_rng(1)
    image = rng.normal(0, 3, lm.array.shape).astype(np.float32)
    image[4:12, 5:15, 6:14] += 100
    lm.array[7:9, 9:11, 9:11] = 1  # seeds in the cube
    lm.array[0, 0, :] = 2  # and in the background
    lm.array[15, 19, :] = 2
    lm.array[8, 17, 2] = 3  # another, locked segment: a wall that stays
    start = lm.array.copy()
    cube = np.zeros(lm.array.shape, bool)
    cube[4:12, 5:15, 6:14] = True
    for method in ("geodesic", "random walker"):
        lm.array[:] = start
        e = fx.grow_from_seeds(lm, image, locked={3}, pad_mm=50, method=method)
        np.testing.assert_array_equal(lm.array == 1, cube, err_msg=method)
        assert lm.array[8, 17, 2] == 3 and (lm.array[~cube] != 0).all() and method in e.name
    lm.array[:] = 0
    lm.array[7:9, 9:11, 9:11] = 1
    with pytest.raises(DelineateError, match="two segments"):
        fx.grow_from_seeds(lm, image)


def test_grow_from_seeds_stays_in_the_padded_box():
    lm = _map(shape=(10, 30, 30), spacing=(1.0, 1.0, 1.0))
    image = np.zeros(lm.array.shape, np.float32)
    image[:, :, 15:] = 50
    lm.array[5, 10, 10] = 1
    lm.array[5, 12, 20] = 2
    fx.grow_from_seeds(lm, image, pad_mm=3)
    box = np.zeros(lm.array.shape, bool)
    box[2:9, 7:16, 7:24] = True
    np.testing.assert_array_equal(lm.array != 0, box)
    np.testing.assert_array_equal(lm.array[box].reshape(7, 9, 17) == 1, np.broadcast_to(np.arange(7, 24) < 15,
                                                                                        (7, 9, 17)))


def test_logical_operations_match_set_algebra():
    from scipy import ndimage

    lm = _map()
    lm.array[2:10, 2:18, 2:22] = 2  # "body" with a hole where segment 3 lies
    lm.array[4:8, 5:10, 5:12] = 3
    lm.array[3:6, 12:15, 14:20] = 1  # one piece inside the body's region, one beyond it
    lm.array[0:2, 0:3, 0:2] = 1
    start = lm.array.copy()
    region2 = ndimage.binary_fill_holes(start == 2)
    cases = {
        ("union", 1, 3): np.where(start == 3, 1, start),
        ("intersect", 1, 2): np.where((start == 1) & ~region2, 0, start),
        ("subtract", 1, 2): np.where((start == 1) & region2, 0, start),
        ("copy", 1, 3): np.where(start == 1, 0, np.where(start == 3, 1, start)),
        ("clear", 1, None): np.where(start == 1, 0, start),
    }
    for (op, target, other), expected in cases.items():
        lm.array[:] = start
        e = fx.logical(lm, op, target, other)
        np.testing.assert_array_equal(lm.array, expected, err_msg=op)
        assert e is not None and (lm.array != start).any()
    lm.array[:] = start
    assert fx.logical(lm, "union", 1, 3, locked={3}) is None  # the other segment is locked: nothing moves
    with pytest.raises(DelineateError):
        fx.logical(lm, "union", 1, 1)
    with pytest.raises(ValueError):
        fx.logical(lm, "xor", 1, 2)


@pytest.mark.parametrize("mm", [2.2, -1.2, 3.0])
def test_margin_is_the_exact_distance_in_mm(mm):
    lm = _map(shape=(9, 14, 16), spacing=(0.6, 1.0, 1.7))
    rng = np.random.default_rng(3)
    blob = np.zeros(lm.array.shape, bool)
    blob[2:7, 3:11, 4:12] = rng.random((5, 8, 8)) > 0.2
    blob[0:3, 0:3, 0:3] = True  # touches the image's edge: shrinking eats it from there too
    lm.array[blob] = 1
    lm.array[4, 12, 6] = 2  # another segment: a grow goes around it
    start = lm.array.copy()
    spacing_zyx = np.array([1.7, 1.0, 0.6])
    fx.margin(lm, 1, mm)
    if mm > 0:
        d = _brute_distance(blob, spacing_zyx, blob)
        expected = np.where((d <= mm + 1e-9) & (start == 0), 1, start)
    else:
        outside = np.pad(~blob, 1, constant_values=True)
        d = _brute_distance(np.pad(blob, 1), spacing_zyx, outside)[1:-1, 1:-1, 1:-1]
        expected = np.where(blob & (d <= -mm + 1e-9), 0, start)
    np.testing.assert_array_equal(lm.array, expected)
    lm.array[:] = start  # the structuring-element grow/shrink of core.editing agrees
    editing.grow_shrink(lm, 1, mm)
    np.testing.assert_array_equal(lm.array, expected)


@pytest.mark.parametrize("side", fx.HOLLOW)
def test_hollow_shell_against_brute_distances(side):
    lm = _map(shape=(10, 14, 14), spacing=(1.0, 1.0, 2.0))
    ball = np.zeros(lm.array.shape, bool)
    z, y, x = np.indices(ball.shape)
    ball[((z - 5) * 2.0) ** 2 + (y - 7) ** 2 + (x - 7) ** 2 <= 20] = True
    lm.array[ball] = 4
    spacing_zyx = np.array([2.0, 1.0, 1.0])
    e = fx.hollow(lm, 4, 2.0, side)
    inner = {"inside": 2.0, "medial": 1.0, "outside": 0.0}[side]
    d_in = _brute_distance(np.pad(ball, 1), spacing_zyx, np.pad(~ball, 1, constant_values=True))[1:-1, 1:-1, 1:-1]
    d_out = _brute_distance(ball, spacing_zyx, ball)
    expected = (ball & (d_in <= inner + 1e-9)) | (~ball & (d_out <= 2.0 - inner + 1e-9) & (2.0 - inner > 0))
    np.testing.assert_array_equal(lm.array == 4, expected)
    assert expected.sum() < ball.sum() or side != "inside"
    lm.array[e.box] = e.before  # the edit's before restores it exactly
    np.testing.assert_array_equal(lm.array == 4, ball)


def test_changed_counts():
    lm = _map()
    e = editing.apply(lm, "x", 1, np.pad(np.ones((2, 3, 4), bool), ((1, 9), (0, 17), (0, 20))))
    assert fx.changed_counts(e) == (24, 2) and fx.changed_counts(e, axis=2) == (24, 4)
    assert fx.changed_counts(None) == (0, 0)
