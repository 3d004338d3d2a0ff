import math

import numpy as np
import pytest

from core.geometry import Geometry
from core.labels import LabelMap, LabelTable
from core.metrics import compare_labelmaps, dice, hausdorff, iou, surface_distances, volume_ml


def test_dice_iou_hand_computed():
    a = np.zeros((1, 4, 4), bool)
    b = np.zeros((1, 4, 4), bool)
    a[0, :2, :2] = True  # 4 voxels
    b[0, :2, :3] = True  # 6 voxels, 4 shared
    assert dice(a, b) == pytest.approx(2 * 4 / 10)
    assert iou(a, b) == pytest.approx(4 / 6)


def test_empty_masks():
    e = np.zeros((3, 3, 3), bool)
    f = e.copy()
    f[1, 1, 1] = True
    assert dice(e, e) == 1.0 and iou(e, e) == 1.0
    assert surface_distances(e, e).hausdorff_mm == 0.0
    assert dice(e, f) == 0.0 and iou(e, f) == 0.0
    assert math.isinf(surface_distances(e, f).hausdorff95_mm)


def test_hausdorff_respects_anisotropic_spacing():
    # two one-voxel-thick slabs, 3 slices apart along z; z spacing 2.5 mm -> 7.5 mm apart
    a = np.zeros((10, 6, 6), bool)
    b = np.zeros((10, 6, 6), bool)
    a[2] = True
    b[5] = True
    sd = surface_distances(a, b, spacing_xyz=(0.5, 0.5, 2.5))
    assert sd.hausdorff_mm == pytest.approx(7.5)
    assert sd.hausdorff95_mm == pytest.approx(7.5)
    # surfaces lie on voxel faces (surface-distance's convention): a's faces at z = 2 and 3,
    # b's at z = 5 and 6 (voxel units); each face's nearest other face is 3 or 2 slices away,
    # so the mean is 2.5 slices = 6.25 mm
    assert sd.assd_mm == pytest.approx(6.25)
    # the same slabs 3 voxels apart along x with 0.5 mm spacing -> 1.5 mm
    a2 = np.moveaxis(a, 0, 2)
    b2 = np.moveaxis(b, 0, 2)
    assert hausdorff(a2, b2, spacing_xyz=(0.5, 0.5, 2.5)) == pytest.approx(1.5)


def test_hd95_ignores_an_outlier_that_hd_sees():
    a = np.zeros((1, 60, 60), bool)
    a[0, 10:50, 10:50] = True
    b = a.copy()
    b[0, 55, 55] = True  # one far-away stray voxel
    sd = surface_distances(a, b, (1.0, 1.0, 1.0))
    assert sd.hausdorff_mm == pytest.approx(math.hypot(6, 6))
    assert sd.hausdorff95_mm < 1.0


def test_volume_ml_and_compare():
    g = Geometry((10, 10, 10), (2.0, 2.0, 2.5))
    a = np.zeros(g.shape_zyx, np.uint8)
    a[2:4, 2:4, 2:4] = 1  # 8 voxels * 10 mm^3 = 0.08 ml
    assert volume_ml(a == 1, g.spacing) == pytest.approx(0.08)
    lm_a = LabelMap(a, g, LabelTable.from_names(["Liver"]))
    lm_b = LabelMap(a.copy(), g, LabelTable.from_names(["Liver"]))
    (row,) = compare_labelmaps(lm_a, lm_b)
    assert row.dice == 1.0 and row.hausdorff95_mm == 0.0 and row.volume_a_ml == pytest.approx(0.08)
    assert lm_a.volumes_ml() == {1: pytest.approx(0.08)}


@pytest.mark.parametrize("slab_voxels", [1, 70, 10**6])  # a slice a slab; two and an odd tail; all
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_volumes_and_values_counted_in_slabs(monkeypatch, slab_voxels, dtype):
    import core.labels

    monkeypatch.setattr(core.labels, "SLAB_VOXELS", slab_voxels)
    g = Geometry((6, 5, 7), (1.0, 2.0, 0.5))
    a = np.random.default_rng(3).choice(np.array([0, 2, 5, 255], dtype), size=g.shape_zyx, p=[0.7, 0.1, 0.15, 0.05])
    if dtype is np.uint16:
        a[-1, -1, -1] = 300
    lm = LabelMap(a, g, LabelTable.from_names([]))
    assert [lab.value for lab in lm.table] == [int(v) for v in np.unique(a) if v]
    counts = np.bincount(a.reshape(-1).astype(np.int64))
    assert lm.volumes_ml() == {v: pytest.approx(counts[v] * 1e-3) for v in np.unique(a) if v}


def test_compare_models_matches_labels_by_name():
    from core.compare import compare_models, matched
    from core.geometry import Geometry
    from core.labels import Label, LabelMap, LabelTable

    g = Geometry((10, 8, 4), (1.0, 1.0, 2.0))
    a = np.zeros((4, 8, 10), np.uint8)
    a[1:3, 2:6, 2:8] = 1
    a[0, 0, 0] = 2
    b = np.zeros_like(a)
    b[1:3, 2:6, 2:8] = 5  # the same organ under another value
    b[3, 7, 9] = 1  # a label the first model lacks
    la = LabelMap(a, g, LabelTable.from_names(["Liver", "Spleen"]))
    lb = LabelMap(b, g, LabelTable((Label(1, "Kidney", (9, 9, 9)), Label(5, "liver", (1, 2, 3)))))
    m = matched(lb, la)
    assert (m.array[1:3, 2:6, 2:8] == 1).all() and m.array[3, 7, 9] == 3 and m.table.get(3).name == "Kidney"
    rows, differ = compare_models(la, lb)
    by = {r.name: r for r in rows}
    assert by["Liver"].dice == 1.0 and by["Spleen"].dice == 0.0
    assert differ.sum() == 2  # the spleen voxel and the kidney voxel
