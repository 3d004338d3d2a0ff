"""The save's agreement metrics are computed inside the boxes of the labels an edit touched, with a
k-d tree for surface distances: they must equal the whole-grid computation with the
surface-distance library itself, on random maps and random edits."""
import math

import numpy as np
import pytest
import surface_distance as sdl
from scipy import ndimage

from core.geometry import Geometry
from core.labels import LabelMap, LabelTable
from core import metrics
from core.metrics import _surfel_distances, compare_labelmaps, label_diff


def _blobs(rng, shape, n_labels):
    arr = np.zeros(shape, np.uint8)
    for v in range(1, n_labels + 1):
        seeds = rng.random(shape) < 0.004
        arr[ndimage.binary_dilation(seeds, iterations=int(rng.integers(1, 4)))] = v
    return arr


def _edit(rng, arr, n_labels):
    """Paint, erase or relabel a few random boxes (some touching the grid's border)."""
    out = arr.copy()
    for _ in range(int(rng.integers(1, 4))):
        lo = [int(rng.integers(0, n)) for n in arr.shape]
        box = tuple(slice(a, min(a + int(rng.integers(1, 6)), n)) for a, n in zip(lo, arr.shape))
        out[box] = int(rng.integers(0, n_labels + 2))  # n_labels + 1: a segment the AI never had
    return out


def _whole_grid(aa, bb, v, spacing_xyz):
    """Dice, HD, HD95, ASSD and both volumes of label v over the whole grid, by the library."""
    ma, mb = aa == v, bb == v
    sp = tuple(float(s) for s in spacing_xyz)[::-1]
    total = ma.sum() + mb.sum()
    d = 1.0 if total == 0 else 2.0 * np.logical_and(ma, mb).sum() / total
    ml = float(np.prod(spacing_xyz)) / 1000.0
    if not ma.any() and not mb.any():
        dist = (0.0, 0.0, 0.0)
    elif ma.any() != mb.any():
        dist = (math.inf, math.inf, math.inf)
    else:
        s = sdl.compute_surface_distances(ma, mb, sp)
        all_d = np.concatenate([s["distances_gt_to_pred"], s["distances_pred_to_gt"]])
        all_a = np.concatenate([s["surfel_areas_gt"], s["surfel_areas_pred"]])
        dist = (sdl.compute_robust_hausdorff(s, 100), sdl.compute_robust_hausdorff(s, 95),
                np.sum(all_d * all_a) / np.sum(all_a))
    return d, dist, ma.sum() * ml, mb.sum() * ml


@pytest.mark.parametrize("seed", range(12))
def test_box_metrics_equal_whole_grid(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(8, 28, 3))
    spacing = tuple(float(s) for s in rng.uniform(0.4, 3.0, 3))
    n = int(rng.integers(1, 5))
    aa = _blobs(rng, shape, n)
    bb = _edit(rng, aa, n) if seed % 4 else aa.copy()  # every fourth: nothing edited
    g = Geometry(shape[::-1], spacing)
    names = [f"organ {v}" for v in range(1, n + 2)]
    rows = compare_labelmaps(LabelMap(aa, g, LabelTable.from_names(names[:n])),
                             LabelMap(bb, g, LabelTable.from_names(names)))
    assert [r.value for r in rows] == list(range(1, n + 2))
    for r in rows:
        d, (hd, hd95, assd), va, vb = _whole_grid(aa, bb, r.value, spacing)
        assert r.dice == pytest.approx(d, rel=1e-12)
        assert (r.hausdorff_mm, r.hausdorff95_mm) == (hd, hd95)
        assert r.assd_mm == pytest.approx(assd, rel=1e-12) or (math.isinf(r.assd_mm) and math.isinf(assd))
        assert (r.volume_a_ml, r.volume_b_ml) == (pytest.approx(va, rel=1e-12), pytest.approx(vb, rel=1e-12))


@pytest.mark.parametrize("seed", range(8))
def test_label_diff_counts_and_boxes(seed):
    rng = np.random.default_rng(100 + seed)
    shape = tuple(int(n) for n in rng.integers(6, 24, 3))
    aa = _blobs(rng, shape, 4)
    bb = _edit(rng, aa, 4)
    diff = label_diff(aa, bb)
    for arr, counts in ((aa, diff.counts_a), (bb, diff.counts_b)):
        full = np.bincount(arr.ravel())
        assert counts == {v: int(c) for v, c in enumerate(full) if v and c}
    changed = aa != bb
    touched = set(np.unique(aa[changed]).tolist()) | set(np.unique(bb[changed]).tolist())
    assert set(diff.boxes) == touched - {0}
    for v, box in diff.boxes.items():  # exactly the box of v's voxels in either map
        assert box == ndimage.find_objects(((aa == v) | (bb == v)).astype(np.uint8))[0]


@pytest.mark.parametrize("reach", [0, 2, 6])  # 0: every distance from the distance transform in a box
@pytest.mark.parametrize("seed", range(12))
def test_surfel_distances_equal_the_library(seed, reach, monkeypatch):
    """Same surfels, areas, distances (to the bit) and order as surface_distance's own function,
    whichever way each distance was found (k-d tree or distance transform in a bounded box)."""
    monkeypatch.setattr(metrics, "_NEAR_VOXELS", reach)
    monkeypatch.setattr(metrics, "_SAMPLE", 7)  # a coarse sample: loose bounds, bigger boxes
    rng = np.random.default_rng(200 + seed)
    nd = 2 if seed % 4 == 0 else 3
    shape = tuple(int(n) for n in rng.integers(5, 30, nd))
    a = ndimage.binary_dilation(rng.random(shape) < 0.02, iterations=int(rng.integers(1, 4)))
    b = a.copy()
    box = tuple(slice(int(rng.integers(0, n // 2)), int(rng.integers(n // 2, n))) for n in shape)
    b[box] = bool(seed % 2)
    a[(0,) * nd] = b[(-1,) * nd] = True  # neither empty, and surfels at the grid's corners
    sp = tuple(float(s) for s in rng.uniform(0.3, 3.0, nd))
    ref, new = sdl.compute_surface_distances(a, b, sp), _surfel_distances(a, b, sp)
    for key in ref:
        np.testing.assert_array_equal(new[key], ref[key], err_msg=key)


def test_a_cavity_deep_inside_an_organ():
    """An erased block deep inside a big organ: its walls' nearest original surface is far away
    (the distance-transform path), the organ's outer surface is untouched (distance 0)."""
    z, y, x = np.ogrid[:40, :48, :48]
    a = ((z - 20) / 18.0) ** 2 + ((y - 24) / 22.0) ** 2 + ((x - 24) / 21.0) ** 2 < 1
    b = a.copy()
    b[14:26, 16:30, 18:32] = False
    sp = (1.5, 0.7, 0.8)
    ref, new = sdl.compute_surface_distances(a, b, sp), _surfel_distances(a, b, sp)
    for key in ref:
        np.testing.assert_array_equal(new[key], ref[key], err_msg=key)
    assert new["distances_pred_to_gt"].max() > 6 * max(sp)  # far beyond the k-d tree's reach
