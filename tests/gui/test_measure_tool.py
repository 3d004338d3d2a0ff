"""The Measure tool in the real window (Xvfb): a ruler between two clicked points on an oblique,
anisotropic image reads their distance in mm; an angle from three clicks; an ellipse ROI dragged on
the view reads its area and HU statistics; RECIST axes of a segment; the list deletes; the
measurements go into the saved correction's edits."""
import numpy as np
import pytest
from PySide6 import QtCore

from core.labels import LabelMap, LabelTable
from core.volume import Volume

pytest.importorskip("pytestqt")


def _oblique() -> Volume:
    t = np.radians(20)
    direction = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    arr = np.full((8, 60, 70), 40, np.int16)
    arr[:, 20:40, 25:45] = 100
    return Volume.from_array(arr, spacing=(0.8, 0.6, 2.5), origin=(-20.0, 10.0, 30.0), direction=direction,
                             modality="CT")


def _pos(view, col, row):
    sr, sc = view.model.display.plane_spacing(view.view)
    return view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(col * sc, row * sr)))


def _click(qtbot, view, col, row):
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, col, row))


def _drag(qtbot, view, start, end):
    """A left-button drag from display voxel ``start`` to ``end`` ((col, row)), in four moves."""
    (c0, r0), (c1, r1) = start, end
    viewport = view.graphics.viewport()
    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, c0, r0))
    for t in np.linspace(0, 1, 5)[1:]:
        qtbot.mouseMove(viewport, pos=_pos(view, c0 + (c1 - c0) * t, r0 + (r1 - r0) * t))
        qtbot.wait(20)
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, c1, r1))


def test_ruler_angle_ellipse_recist_on_an_oblique_image(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)  # the worklist's first read
    window.set_layout("2d")
    vol = _oblique()
    window.session.set_image(vol, "oblique phantom")
    assert window.model.display.is_view is False  # resampled: the oblique case
    view = window.views["axial"]
    qtbot.wait(50)
    window.actions_by_id["measure_ruler"].trigger()  # M
    assert window.measure.mode == "ruler" and window.measure_panel.buttons["ruler"].isChecked()
    (c0, r0), (c1, r1) = (20.0, 15.0), (50.0, 45.0)  # display voxels (col, row) on the axial view
    _click(qtbot, view, c0, r0)
    _click(qtbot, view, c1, r1)
    ms = window.session.measurements
    assert len(ms) == 1 and ms[0].kind == "ruler"
    sr, sc = window.model.display.plane_spacing("axial")
    expected = np.hypot((c1 - c0) * sc, (r1 - r0) * sr)  # the clicked points' distance in mm on the view
    from core.measurements import values

    got = values(ms[0])["length_mm"]
    pixel = max(sr, sc) * view.viewbox.viewPixelSize()[0] / min(sr, sc)  # one screen pixel in mm
    assert abs(got - expected) < 2 * pixel
    label = window.measure.overlays["axial"].labels[0]
    assert label.isVisible() and label.textItem.toPlainText() == f"{got:.1f} mm"
    assert window.measure_panel.list.item(0).text() == f"1. ruler: {got:.1f} mm"
    # the same points on the image's own (oblique) grid: the distance is the same in mm
    a, b = vol.geometry.world_to_index(np.array(ms[0].points))
    assert np.hypot(*((b - a) * vol.geometry.spacing)[:2]) == pytest.approx(got, abs=1e-6)

    # dragging an end moves it: the ruler reads the new distance
    qtbot.mousePress(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, c1, r1))
    for t in np.linspace(0, 1, 4)[1:]:
        qtbot.mouseMove(view.graphics.viewport(), pos=_pos(view, c1 + 10 * t, r1))
        qtbot.wait(20)
    qtbot.mouseRelease(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, c1 + 10, r1))
    assert len(window.session.measurements) == 1
    moved = values(window.session.measurements[0])["length_mm"]
    assert abs(moved - np.hypot((c1 + 10 - c0) * sc, (r1 - r0) * sr)) < 2 * pixel
    assert window.measure_panel.list.item(0).text() == f"1. ruler: {moved:.1f} mm"

    window.actions_by_id["measure_angle"].trigger()
    for c, r in ((8, 60), (25, 60), (25, 80)):
        _click(qtbot, view, c, r)
    assert values(window.session.measurements[-1])["angle_deg"] == pytest.approx(90.0, abs=1.0)

    window.actions_by_id["measure_ellipse"].trigger()
    _drag(qtbot, view, (45, 62), (65, 77))
    roi = values(window.session.measurements[-1], vol)
    assert window.session.measurements[-1].kind == "ellipse"
    assert roi["area_mm2"] == pytest.approx(np.pi * 10 * sc * 7.5 * sr, rel=0.1)
    assert roi["unit"] == "HU" and roi["min"] >= 40 and roi["max"] <= 100 and roi["voxels"] > 0

    lm = LabelMap.empty_like(vol.geometry, LabelTable.from_names(["Lesion"]))
    lm.array[4, 20:40, 25:45] = 1
    window.session.set_labelmap(lm)
    window.measure_panel.recist_button.click()
    rec = values(window.session.measurements[-1])
    assert rec["long_mm"] == pytest.approx(np.hypot(19 * 0.8, 19 * 0.6), abs=0.8)
    assert window.measure_panel.list.count() == 4

    window._focused_view = "axial"
    window.set_layout("single")  # the axial view alone, for the screenshot
    qtbot.wait(100)
    window.save_screenshot(str(tmp_path / "measure.png"))
    from app.actions.review import correction_request

    kinds = [r["kind"] for r in correction_request(window.session, "in_review").edits["measurements"]]
    assert kinds == ["ruler", "angle", "ellipse", "recist"]
    window.measure_panel.list.setCurrentRow(1)
    window.measure_panel.delete.click()
    assert [m.kind for m in window.session.measurements] == ["ruler", "ellipse", "recist"]
    window.actions_by_id["tool_paint"].trigger()  # an editing tool takes the left button back
    assert window.measure.mode is None and view.left_handler == window.edit_panel.on_view


def test_labels_stay_in_the_view_and_apart(qtbot, window):
    """Two rulers ending at the same place near the view's right edge: each label lies wholly inside
    the view and neither covers the other (a RECIST label was cut at the edge and sat over an
    ellipse's)."""
    from app.actions import measuring
    from core.measurements import Measurement

    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    window.set_layout("2d")
    vol = Volume.from_array(np.full((4, 60, 70), 40, np.int16), spacing=(1.0, 1.0, 2.0), modality="CT")
    window.session.set_image(vol, "edge phantom")
    view = window.views["axial"]
    view.viewbox.autoRange(padding=0)
    qtbot.wait(50)
    g = vol.geometry
    k = float(view.shown_index)
    end = g.index_to_world(np.array([68.0, 30.0, k]))  # (x, y, z) index: at the right edge
    for start in ((20.0, 10.0, k), (20.0, 50.0, k)):
        measuring.add(window.session, Measurement("ruler", (tuple(g.index_to_world(np.array(start))), tuple(end))))
    qtbot.wait(50)
    labels = [item for item in window.measure.overlays["axial"].labels if item.isVisible()]
    assert len(labels) == 2
    port = QtCore.QRectF(view.graphics.viewport().rect())
    boxes = [view.graphics.mapFromScene(item.sceneBoundingRect()).boundingRect() for item in labels]
    for box in boxes:
        assert port.contains(QtCore.QRectF(box).adjusted(2, 2, -2, -2)), (box, port)
    assert not QtCore.QRectF(boxes[0]).adjusted(2, 2, -2, -2).intersects(QtCore.QRectF(boxes[1]))


def test_labels_are_placed_again_when_the_view_is_panned(qtbot, window):
    """A label placed right of its point while there was room moves left of it once a pan brings
    the point to the view's right edge (labels were placed on slice changes only, and stayed cut)."""
    from app.actions import measuring
    from core.measurements import Measurement

    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    window.set_layout("2d")
    vol = Volume.from_array(np.full((4, 60, 70), 40, np.int16), spacing=(1.0, 1.0, 2.0), modality="CT")
    window.session.set_image(vol, "pan phantom")
    view = window.views["axial"]
    view.viewbox.autoRange(padding=0)
    qtbot.wait(50)
    g, k = vol.geometry, float(view.shown_index)
    a, b = (g.index_to_world(np.array(p)) for p in ((20.0, 30.0, k), (35.0, 30.0, k)))
    measuring.add(window.session, Measurement("ruler", (tuple(a), tuple(b))))
    qtbot.wait(50)
    (label,) = [item for item in window.measure.overlays["axial"].labels if item.isVisible()]
    port = QtCore.QRectF(view.graphics.viewport().rect())
    inside = lambda: port.contains(  # noqa: E731
        QtCore.QRectF(view.graphics.mapFromScene(label.sceneBoundingRect()).boundingRect()).adjusted(2, 2, -2, -2))
    assert inside()
    at = view.graphics.mapFromScene(label.scenePos())
    view.viewbox.translateBy(x=-(port.right() - 3 - at.x()) * view.viewbox.viewPixelSize()[0])  # its point near the right edge
    qtbot.wait(50)
    assert inside()
