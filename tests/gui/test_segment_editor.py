"""The segment editor's effects in the real window (Xvfb), on an anisotropic phantom: the brush's
outline follows the mouse at the brush's size in mm; level tracing and scissors driven by mouse clicks
and drags; hole filling in 3D and on the slice, interpolation, margin, hollow, grow from seeds and
logical operations from the Edit panel. Each gives the voxel-exact expected mask, is one undo step,
and says in the status bar what it changed (or that nothing changed)."""
import numpy as np
import pytest
from PySide6 import QtCore
from scipy import ndimage

from core.labels import LabelMap, LabelTable
from core.volume import Volume

pytest.importorskip("pytestqt")

SPACING = (0.8, 0.6, 2.5)  # x, y, z mm
SQUARE = (slice(None), slice(10, 30), slice(12, 38))  # the bright square, every slice


def _phantom() -> Volume:
    arr = np.full((8, 40, 50), 40, np.int16)
    arr[SQUARE] = 100
    arr[:, 33:37, 3:8] = -50  # a dark blob
    return Volume.from_array(arr, spacing=SPACING, origin=(-20.0, 10.0, 30.0), modality="CT")


def _open(qtbot, window, names=("Lesion", "Background")):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)  # the worklist's first read
    window.set_layout("2d")
    vol = _phantom()
    window.session.set_image(vol, "phantom")
    lm = LabelMap.empty_like(vol.geometry, LabelTable.from_names(list(names)))
    window.session.set_labelmap(lm)
    window.model.set_cursor_index(np.array([25, 20, 4]))
    qtbot.wait(50)
    return vol, lm


def _pos(view, col, row):
    sr, sc = view.model.display.plane_spacing(view.view)
    return view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(col * sc, row * sr)))


def _status(window) -> str:
    return window.statusBar().currentMessage()


def _drag(qtbot, view, corners):
    """A mouse drag along straight lines between ``corners`` (a few moves per side, as a hand does)."""
    points = [tuple(np.add(a, t * np.subtract(b, a))) for a, b in zip(corners[:-1], corners[1:])
              for t in np.linspace(0, 1, 5)[1:]]
    viewport = view.graphics.viewport()
    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, *corners[0]))
    for p in points:
        qtbot.mouseMove(viewport, pos=_pos(view, *p))
        qtbot.wait(20)
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, *points[-1]))


def _one_step(window, before):
    """The last action was one undo step: undo gives ``before`` back, redo the result again."""
    after = window.model.labelmap.array.copy()
    n = len(window.session.history.done)
    window.actions_by_id["undo"].trigger()
    np.testing.assert_array_equal(window.model.labelmap.array, before)
    assert len(window.session.history.done) == n - 1
    window.actions_by_id["redo"].trigger()
    np.testing.assert_array_equal(window.model.labelmap.array, after)


def test_brush_outline_level_trace_and_scissors_with_the_mouse(qtbot, window):
    vol, lm = _open(qtbot, window)
    panel, view = window.edit_panel, window.views["axial"]
    k = view.shown_index
    panel.label.setCurrentIndex(panel.label.findData(1))

    # the brush's outline: a circle of the brush's radius in mm, centred under the mouse
    window.actions_by_id["tool_paint"].trigger()
    panel.radius.setValue(4.0)
    qtbot.mouseMove(view.graphics.viewport(), pos=_pos(view, 20, 15))
    qtbot.wait(50)
    ring = panel.shapes.brush_items["axial"]
    pixel = view.viewbox.viewPixelSize()[0]
    assert ring.isVisible()
    assert ring.rect().width() == pytest.approx(8.0) and ring.rect().height() == pytest.approx(8.0)
    assert ring.rect().center().x() == pytest.approx(20 * SPACING[0], abs=2 * pixel)
    assert ring.rect().center().y() == pytest.approx(15 * SPACING[1], abs=2 * pixel)
    window.actions_by_id["brush_bigger"].trigger()  # ]
    assert panel.radius.value() == pytest.approx(5.0) and ring.rect().width() == pytest.approx(10.0)
    window.actions_by_id["brush_smaller"].trigger()  # [
    assert panel.radius.value() == pytest.approx(4.0)
    coronal = window.views["coronal"]  # straight onto another view (no Leave on the way): one ring on screen
    panel.shapes.show_brush("coronal", coronal.viewbox.viewRect().center())
    assert panel.shapes.brush_items["coronal"].isVisible() and not ring.isVisible()
    qtbot.mouseMove(view.graphics.viewport(), pos=_pos(view, 21, 15))
    qtbot.wait(50)
    assert ring.isVisible() and not panel.shapes.brush_items["coronal"].isVisible()

    # level tracing: the outline under the mouse, then a click fills the bright square on this slice
    window.actions_by_id["tool_level_trace"].trigger()  # T
    assert panel.tool.currentText() == "Level trace" and view.left_handler == panel.on_view
    assert not ring.isVisible()
    qtbot.mouseMove(view.graphics.viewport(), pos=_pos(view, 20, 16))
    qtbot.wait(50)
    preview = panel.shapes.paths["axial"]
    assert preview.isVisible()
    box = preview.path().boundingRect()  # the square's outline, in mm on the view
    assert box.left() == pytest.approx(11.5 * SPACING[0], abs=0.6) and box.right() == pytest.approx(
        37.5 * SPACING[0], abs=0.6)
    before = lm.array.copy()
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, 20, 16))
    expected = before.copy()
    expected[k][SQUARE[1:]] = 1
    np.testing.assert_array_equal(window.model.labelmap.array, expected)
    assert _status(window) == "Level trace: 520 voxels changed on 1 image slice (Lesion +520)"
    _one_step(window, before)

    # scissors through the volume: erase the segment inside a dragged rectangle, on every slice
    window.model.labelmap.array[:, 5:35, 5:45] = 1
    window.model.labels_changed(None)
    window.actions_by_id["tool_scissors"].trigger()  # X
    assert panel.scissors_mode.currentText() == "erase inside" and panel.through.isChecked()
    before = window.model.labelmap.array.copy()
    corners = [(14.5, 12.5), (30.5, 12.5), (30.5, 25.5), (14.5, 25.5), (14.5, 12.6)]  # no voxel centre on an edge
    _drag(qtbot, view, corners)
    expected = before.copy()
    expected[:, 13:26, 15:31] = 0
    np.testing.assert_array_equal(window.model.labelmap.array, expected)
    assert _status(window).startswith(f"Scissors (erase inside) through the volume: {8 * 13 * 16} voxels changed "
                                      "on 8 image slices")
    _one_step(window, before)
    # on the shown slice only: fill the other segment inside the shape
    panel.label.setCurrentIndex(panel.label.findData(2))
    panel.scissors_mode.setCurrentText("fill inside")
    panel.through.setChecked(False)
    before = window.model.labelmap.array.copy()
    _drag(qtbot, view, corners)
    expected = before.copy()
    expected[k, 13:26, 15:31] = 2
    np.testing.assert_array_equal(window.model.labelmap.array, expected)
    _one_step(window, before)
    assert not panel.shapes.paths["axial"].isVisible()  # the shape went with the release


def test_holes_interpolation_margin_hollow_and_seeds_from_the_panel(qtbot, window):
    vol, lm = _open(qtbot, window)
    panel = window.edit_panel
    panel.label.setCurrentIndex(panel.label.findData(1))
    k = window.model.slice_index("axial")

    def run(name):
        with qtbot.waitSignal(window.loaded, timeout=60000):
            panel.op_buttons[name].click()
        return _status(window)

    # a contour drawn on one slice: 3D hole filling finds nothing and says so; the slice's fills it
    lm.array[k, 8:30, 10:40] = 1
    lm.array[k, 12:26, 14:36] = 0
    window.model.labels_changed(None)
    before = lm.array.copy()
    assert "nothing changed in Lesion" in run("Fill holes") and "Fill holes (slice)" in _status(window)
    np.testing.assert_array_equal(lm.array, before)
    panel.last_view = "axial"
    text = run("Fill holes (slice)")
    expected = before.copy()
    expected[k, 12:26, 14:36] = 1
    np.testing.assert_array_equal(window.model.labelmap.array, expected)
    assert text == f"Fill holes (slice) (axial view, slice {k + 1} of the image's z axis): {14 * 22} voxels " \
                   f"changed on 1 image slice (Lesion +{14 * 22})"
    _one_step(window, before)
    assert "nothing changed" in run("Fill holes (slice)")  # filled already

    # interpolation between two drawn slices says how much it filled
    lm.array[:] = 0
    lm.array[1, 10:20, 10:20] = 1
    lm.array[5, 10:20, 10:20] = 1
    window.model.labels_changed(None)
    before = lm.array.copy()
    assert run("Interpolate slices") == "Interpolate slices: 300 voxels changed on 3 image slices (Lesion +300)"
    assert (window.model.labelmap.array[2:5, 10:20, 10:20] == 1).all()
    _one_step(window, before)

    # margin 2 mm on the anisotropic grid: exactly the background within 2 mm of the segment
    lm.array[:] = 0
    lm.array[3:5, 15:22, 18:26] = 1
    lm.array[4, 23, 20] = 2  # another segment: the margin goes around it
    window.model.labels_changed(None)
    before = lm.array.copy()
    sampling = np.array(SPACING[::-1])
    mask = before == 1
    panel.amount.setValue(2.0)
    run("Grow by mm")
    grown = ndimage.distance_transform_edt(~mask, sampling=sampling) <= 2.0 + 1e-9
    np.testing.assert_array_equal(window.model.labelmap.array, np.where(grown & (before == 0), 1, before))
    _one_step(window, before)
    window.actions_by_id["undo"].trigger()
    # with Preview first: shown in green on the views, the map untouched until Apply (one undo step)
    panel.preview.setChecked(True)
    n = len(window.session.history.done)
    assert run("Grow by mm").startswith("Preview — Grow by mm: ")
    np.testing.assert_array_equal(window.model.labelmap.array, before)
    codes = panel.previewer.codes  # on the display grid, which is the image's own here
    np.testing.assert_array_equal(codes == 1, grown & (before == 0))
    assert not (codes == 2).any() and panel.previewer.items["axial"].qimage is not None
    # drawn in green and white stripes, never a segment's solid colour (segment 1 is red, segment 2 green)
    from gui.shape_tools import hatched

    shown = panel.previewer.items["axial"]
    drawn = set(np.unique(hatched(shown.source)[shown.source > 0]).tolist())
    assert drawn == {1, 3} and len(np.unique(shown._pixels[shown.source > 0])) == 2
    panel.apply_button.click()
    np.testing.assert_array_equal(window.model.labelmap.array, np.where(grown & (before == 0), 1, before))
    assert panel.previewer.codes is None and len(window.session.history.done) == n + 1
    window.actions_by_id["undo"].trigger()
    run("Grow by mm")
    panel.discard_button.click()
    np.testing.assert_array_equal(window.model.labelmap.array, before)
    assert panel.previewer.codes is None and not panel.apply_button.isEnabled()
    panel.preview.setChecked(False)
    # hollow 1.5 mm: the segment's outer 1.5 mm stays
    panel.amount.setValue(1.5)
    text = run("Hollow (mm)")
    inner = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=sampling)[1:-1, 1:-1, 1:-1]
    np.testing.assert_array_equal(window.model.labelmap.array, np.where(mask & (inner > 1.5 + 1e-9), 0, before))
    assert text.startswith("Hollow (mm): ") and "Lesion −" in text
    _one_step(window, before)

    # grow from seeds: a stroke in the square and strokes in the background split the image exactly
    lm.array[:] = 0
    lm.array[3:5, 18:22, 20:30] = 1
    lm.array[:, 0, 0] = 2
    lm.array[:, 39, 49] = 2
    window.model.labels_changed(None)
    before = lm.array.copy()
    text = run("Grow from seeds")
    square = np.zeros(before.shape, bool)
    square[SQUARE] = True
    np.testing.assert_array_equal(window.model.labelmap.array, np.where(square, 1, 2))
    n = before.size - (before != 0).sum()
    assert text.startswith(f"Grow from seeds by geodesic: {n} voxels changed on 8 image slices")
    _one_step(window, before)
    grown = window.model.labelmap.array.copy()
    window.segments.table.item(1, 5).setCheckState(QtCore.Qt.CheckState.Checked)  # lock Background
    assert "at least two segments" in run("Grow from seeds")  # said in the status bar, no dialog
    np.testing.assert_array_equal(window.model.labelmap.array, grown)
    assert window._last_error is None


def test_logical_operations_and_a_segment_list_of_eight_rows(qtbot, window):
    names = ("Body", "Liver", "Lesion", "Spleen", "Kidney", "Aorta", "Bone", "Fat")
    vol, lm = _open(qtbot, window, names)
    panel = window.edit_panel
    lm.array[1:7, 5:35, 5:45] = 1  # "body" around the others
    lm.array[2:5, 10:20, 10:20] = 2  # liver, enclosed by the body
    lm.array[3, 12:15, 12:15] = 3  # a lesion in the liver
    lm.array[0, 0:3, 0:3] = 2  # a liver leak outside the body
    window.model.labels_changed(None)
    start = lm.array.copy()
    region = ndimage.binary_fill_holes(start == 1)

    def apply(op, target, other):
        panel.label.setCurrentIndex(panel.label.findData(target))
        panel.logic_op.setCurrentText(op)
        panel.logic_other.setCurrentIndex(panel.logic_other.findData(other))
        before = window.model.labelmap.array.copy()
        with qtbot.waitSignal(window.loaded, timeout=30000):
            panel.logic_apply.click()
        said = _status(window)
        _one_step(window, before)
        return window.model.labelmap.array.copy(), said

    got, said = apply("intersect", 2, 1)  # the liver within the body: the leak goes
    np.testing.assert_array_equal(got, np.where((start == 2) & ~region, 0, start))
    assert said == "Intersect with 1 Body: 9 voxels changed on 1 image slice (Liver −9)"
    assert _status(window) == "Redo intersect: 9 voxels changed on 1 image slice (Liver −9)"  # _one_step's redo
    got, _ = apply("union", 2, 3)  # the lesion joins the liver
    np.testing.assert_array_equal(got, np.where(start == 3, 2, np.where((start == 2) & ~region, 0, start)))
    window.actions_by_id["undo"].trigger()
    window.actions_by_id["undo"].trigger()
    np.testing.assert_array_equal(window.model.labelmap.array, start)
    got, _ = apply("subtract", 3, 2)  # the lesion minus the liver's region: gone
    np.testing.assert_array_equal(got, np.where(start == 3, 0, start))
    got, _ = apply("clear", 1, None)
    np.testing.assert_array_equal(got, np.where(start == 1, 0, np.where(start == 3, 0, start)))

    # the list shows all eight segments without scrolling
    table = window.segments.table
    assert table.rowCount() == 8
    qtbot.wait(50)
    assert table.rowViewportPosition(7) + table.rowHeight(7) <= table.viewport().height()


def test_level_trace_and_scissors_on_an_oblique_image(qtbot, window):
    t = np.radians(20)
    direction = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    arr = np.full((8, 60, 70), 40, np.int16)
    arr[:, 20:40, 25:45] = 100
    vol = Volume.from_array(arr, spacing=SPACING, origin=(-20.0, 10.0, 30.0), direction=direction, modality="CT")
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    window.set_layout("2d")
    window.session.set_image(vol, "oblique phantom")
    lm = LabelMap.empty_like(vol.geometry, LabelTable.from_names(["Lesion"]))
    window.session.set_labelmap(lm)
    display = window.model.display
    assert display.is_view is False  # resampled for display: the oblique case
    click = display.grid.world_to_index(vol.geometry.index_to_world([35.0, 30.0, 4.0]))
    window.model.set_cursor_index(np.rint(click))
    view, panel = window.views["axial"], window.edit_panel
    qtbot.wait(50)
    s = view.shown_index

    # level tracing: the clicked point's slice of the image's own grid, the square on it exactly
    window.actions_by_id["tool_level_trace"].trigger()
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, click[0], click[1]))
    k = int(np.rint(vol.geometry.world_to_index(display.grid.index_to_world([click[0], click[1], s]))[2]))
    expected = np.zeros(arr.shape, np.uint8)
    expected[k, 20:40, 25:45] = 1
    np.testing.assert_array_equal(window.model.labelmap.array, expected)
    window.actions_by_id["undo"].trigger()

    # scissors: the voxels whose centres project inside the shape drawn on the (resampled) view
    lm.array[:, 15:45, 20:50] = 1
    window.model.labels_changed(None)
    before = lm.array.copy()
    k_, j_, i_ = np.indices(arr.shape)
    d = display.grid.world_to_index(vol.geometry.index_to_world(np.stack([i_, j_, k_], -1).astype(float)))
    c0, c1, r0, r1 = click[0] - 8.3, click[0] + 6.7, click[1] - 5.2, click[1] + 9.1
    inside = (d[..., 0] > c0) & (d[..., 0] < c1) & (d[..., 1] > r0) & (d[..., 1] < r1)
    sr, sc = display.plane_spacing("axial")
    pixel = view.viewbox.viewPixelSize()[0]  # mm per screen pixel: the drawn shape is that exact
    edge = np.minimum.reduce([np.abs(d[..., 0] - c0) * sc, np.abs(d[..., 0] - c1) * sc,
                              np.abs(d[..., 1] - r0) * sr, np.abs(d[..., 1] - r1) * sr]) < 2 * pixel
    on_slice = np.abs(d[..., 2] - s) <= 0.5 + 1e-6
    window.actions_by_id["tool_scissors"].trigger()
    panel.scissors_mode.setCurrentText("erase outside")
    panel.through.setChecked(False)
    _drag(qtbot, view, [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0 + 0.05)])
    want = np.where(on_slice & ~inside & (before == 1), 0, before)
    got = window.model.labelmap.array
    assert (got != before).any() and (on_slice & inside & (before == 1)).any()
    np.testing.assert_array_equal(got[~edge], want[~edge])
    assert (got[~on_slice] == before[~on_slice]).all()  # the other slices keep their voxels
    assert len(window.session.history.done) == 1
