"""Measurements in patient mm: a ruler on an oblique anisotropic grid reads the exact distance, angles,
an elliptic ROI's statistics and area, RECIST axes of an ellipse phantom, and the session's actions."""
import numpy as np
import pytest

from core.geometry import Geometry
from core.labels import LabelMap, LabelTable
from core.measurements import Measurement, ellipse_voxels, recist, values
from core.volume import Volume


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_ruler_on_oblique_anisotropic_grid_is_exact_mm():
    g = Geometry((40, 30, 12), (0.7, 1.3, 3.0), (-12.0, 40.0, 7.5), _rotation(0.3, -0.2, 0.5))
    a_ijk, b_ijk = np.array([3.0, 4.0, 2.0]), np.array([30.0, 21.0, 9.0])
    a, b = g.index_to_world([a_ijk, b_ijk])
    expected = np.sqrt(np.sum(((b_ijk - a_ijk) * g.spacing) ** 2))  # mm along each index axis, Pythagoras
    assert values(Measurement("ruler", (tuple(a), tuple(b))))["length_mm"] == pytest.approx(expected, abs=1e-9)


def test_angle():
    m = Measurement("angle", ((10, 0, 5), (0, 0, 5), (3, 3 * np.sqrt(3), 5)))
    assert values(m)["angle_deg"] == pytest.approx(60.0)
    assert values(Measurement("angle", ((1, 0, 0), (0, 0, 0), (-2, 0, 0))))["angle_deg"] == pytest.approx(180.0)


def test_bad_points_are_refused_in_one_line():
    from core.errors import DelineateError

    with pytest.raises(DelineateError, match="ruler needs 2"):
        Measurement("ruler", ((0, 0, 0),))
    with pytest.raises(DelineateError, match="unknown measurement"):
        Measurement("area", ((0, 0, 0),) * 2)


def test_ellipse_roi_statistics_and_area_on_a_phantom():
    rng = np.random.default_rng(3)
    arr = rng.integers(-100, 300, (6, 50, 60)).astype(np.int16)  # known values: HU of a CT phantom
    vol = Volume.from_array(arr, spacing=(0.8, 0.6, 2.5), origin=(5.0, -7.0, 20.0), modality="CT")
    k, cx, cy, a, b = 3, 30, 25, 8.0, 5.0  # centre voxel, semi-axes in mm (along x and y)
    c = vol.geometry.index_to_world([cx, cy, k])
    m = Measurement("ellipse", (tuple(c), tuple(c + [a, 0, 0]), tuple(c + [0, b, 0])))
    v = values(m, vol)
    yy, xx = np.mgrid[0:50, 0:60]
    inside = ((xx - cx) * 0.8 / a) ** 2 + ((yy - cy) * 0.6 / b) ** 2 <= 1  # voxel centres inside, on slice k
    expected = arr[k][inside].astype(float)
    assert v["voxels"] == inside.sum()
    assert v["mean"] == pytest.approx(expected.mean()) and v["sd"] == pytest.approx(expected.std())
    assert (v["min"], v["max"]) == (expected.min(), expected.max())
    assert v["area_mm2"] == pytest.approx(np.pi * a * b)
    assert v["unit"] == "HU" and v["axes_mm"] == pytest.approx([2 * a, 2 * b])
    assert abs(v["voxels"] * 0.8 * 0.6 - v["area_mm2"]) < 0.15 * v["area_mm2"]


def test_ellipse_on_an_oblique_image_covers_one_voxel_thickness():
    """An ellipse in the plane of an oblique image's slice takes that slice's voxels only."""
    g = Geometry((40, 40, 8), (0.9, 0.9, 3.0), (0, 0, 0), _rotation(0.0, 0.0, 0.4) @ _rotation(0.35, 0, 0))
    arr = np.zeros(g.shape_zyx, np.float32)
    arr[4] = 100.0  # the slice the ellipse lies in; others 0
    vol = Volume(arr, g)
    c = g.index_to_world([20, 20, 4])
    u, w = g.direction[:, 0] * 9.0, g.direction[:, 1] * 6.0
    v = values(Measurement("ellipse", (tuple(c), tuple(c + u), tuple(c + w))), vol)
    assert v["min"] == v["max"] == 100.0
    k, _j, _i = ellipse_voxels(g, (c, c + u, c + w))
    assert set(k.tolist()) == {4}


def test_recist_of_an_ellipse_phantom_is_its_axes_within_a_voxel():
    sx, sy = 0.7, 0.9
    g = Geometry((120, 110, 9), (sx, sy, 4.0), (0, 0, 0), _rotation(0.2, 0.1, 0.0))
    a_mm, b_mm, theta = 30.0, 14.0, np.radians(35)  # semi-axes, rotated in plane
    arr = np.zeros(g.shape_zyx, np.uint8)
    yy, xx = np.mgrid[0:110, 0:120]
    x, y = xx * sx - 42.0, yy * sy - 50.0
    xr, yr = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    for k, scale in ((3, 0.6), (4, 1.0), (5, 0.8)):  # largest on slice 4
        arr[k][(xr / (a_mm * scale)) ** 2 + (yr / (b_mm * scale)) ** 2 <= 1] = 1
    lm = LabelMap(arr, g, LabelTable.from_names(["Lesion"]))
    m = recist(lm, 1)
    v = values(m)
    voxel = max(sx, sy)
    assert abs(v["long_mm"] - 2 * a_mm) <= voxel and abs(v["short_mm"] - 2 * b_mm) <= voxel
    p = m.array
    assert np.allclose(g.world_to_index(p)[:, 2], 4)  # on the slice where it is largest
    long_dir, short_dir = p[1] - p[0], p[3] - p[2]
    assert abs(long_dir @ short_dir) / (np.linalg.norm(long_dir) * np.linalg.norm(short_dir)) < 1e-9
    assert m.label == "Lesion" and recist(lm, 2) is None


def test_session_actions_list_remove_and_save_with_the_correction():
    from app.actions import measuring
    from app.actions.review import correction_request
    from app.session import CaseSession, MeasurementsChanged

    vol = Volume.from_array(np.zeros((4, 20, 20), np.int16), spacing=(0.5, 0.5, 2.0), modality="CT")
    s = CaseSession()
    s.set_image(vol, "phantom")
    seen = []
    s.subscribe(MeasurementsChanged, lambda e: seen.append(len(e.measurements)))
    measuring.add(s, Measurement("ruler", ((0, 0, 0), (3, 4, 0))))
    measuring.add(s, Measurement("angle", ((1, 0, 0), (0, 0, 0), (0, 1, 0))))
    assert seen == [1, 2] and [r["kind"] for r in measuring.rows(s)] == ["ruler", "angle"]
    assert measuring.rows(s)[0]["length_mm"] == pytest.approx(5.0)
    measuring.replace(s, 0, Measurement("ruler", ((0, 0, 0), (6, 8, 0))))
    assert seen == [1, 2, 2] and measuring.rows(s)[0]["length_mm"] == pytest.approx(10.0)
    measuring.remove(s, 1)
    assert seen[-1] == 1
    lm = LabelMap.empty_like(vol.geometry, LabelTable.from_names(["Lesion"]))
    lm.array[2, 5:12, 6:15] = 1
    s.set_labelmap(lm)
    m = measuring.add_recist(s, 1)
    assert m is not None and values(m)["long_mm"] > 0
    req = correction_request(s, "in_review")
    saved = req.edits["measurements"]
    assert [r["kind"] for r in saved] == ["ruler", "recist"] and saved[0]["length_mm"] == pytest.approx(10.0)
    assert Measurement.from_dict(saved[1]) == s.measurements[1]
    s.set_image(vol, "another")
    assert s.measurements == [] and seen[-1] == 0


def test_measurements_in_the_statistics_export_and_the_report(tmp_path):
    import csv
    import json

    from app.actions import measuring
    from app.actions.exporting import case_from_session, export_case
    from app.session import CaseSession
    from export import report

    arr = np.full((3, 30, 30), 50, np.int16)
    vol = Volume.from_array(arr, spacing=(0.5, 0.5, 3.0), modality="CT")
    s = CaseSession()
    s.set_image(vol, "phantom")
    lm = LabelMap.empty_like(vol.geometry, LabelTable.from_names(["Lesion"]))
    lm.array[1, 10:20, 8:22] = 1
    s.set_labelmap(lm)
    c = vol.geometry.index_to_world([15, 15, 1])
    measuring.add(s, Measurement("ruler", ((0, 0, 3), (6, 8, 3))))
    measuring.add(s, Measurement("ellipse", (tuple(c), tuple(c + [4, 0, 0]), tuple(c + [0, 2, 0]))))
    measuring.add_recist(s, 1)
    case = case_from_session(s)
    written = export_case("stats", case, tmp_path / "stats.json")
    doc = json.loads(written[0].read_text())
    assert [m["kind"] for m in doc["measurements"]] == ["ruler", "ellipse", "recist"]
    assert doc["measurements"][0]["length_mm"] == pytest.approx(10.0)
    assert doc["measurements"][1]["mean"] == 50.0 and doc["measurements"][1]["unit"] == "HU"
    written = export_case("stats", case, tmp_path / "stats.csv")
    assert [p.name for p in written] == ["stats.csv", "stats-measurements.csv"]
    rows = list(csv.DictReader(written[1].open()))
    assert rows[0]["kind"] == "ruler" and float(rows[0]["length_mm"]) == pytest.approx(10.0)
    assert rows[0]["points_lps_mm"] == "0 0 3; 6 8 3"
    assert float(rows[2]["long_mm"]) == pytest.approx(np.hypot(13 * 0.5, 9 * 0.5), abs=0.5)
    info = report.ReportInfo(measurements=measuring.rows(s))
    figs = report.report_figures(info, vol, lm, [])
    shown = "\n".join(t.get_text() for fig in figs for ax in fig.axes for t in ax.texts)
    assert "Measurements" in shown and "1. ruler: 10.0 mm" in shown and "recist: Lesion:" in shown


def test_measurements_saved_with_the_correction_come_back_from_the_store(tmp_path):
    from app.actions import measuring
    from app.actions.exporting import case_from_store
    from app.actions.review import correction_request, save_correction
    from app.session import CaseSession

    vol = Volume.from_array(np.zeros((3, 16, 16), np.int16), spacing=(0.7, 0.7, 2.0), modality="CT")
    s = CaseSession()
    s.set_image(vol, "phantom")
    lm = LabelMap.empty_like(vol.geometry, LabelTable.from_names(["Lesion"]))
    lm.array[1, 4:9, 4:12] = 1
    s.set_labelmap(lm)
    measuring.add(s, Measurement("ruler", ((1, 2, 2), (4, 6, 2)), "a"))
    measuring.add_recist(s, 1)
    case_id, _n = save_correction(correction_request(s, "approved", "reader"), tmp_path / "store")
    back = case_from_store(case_id, tmp_path / "store").measurements
    assert [Measurement.from_dict(r) for r in back] == s.measurements
    assert back[0]["length_mm"] == pytest.approx(5.0)
