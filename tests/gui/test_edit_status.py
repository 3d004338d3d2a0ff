"""The status bar says what each edit did (issue: brush strokes, undo, redo and Delete segment left
it empty or stale while the other effects gave exact counts), and a tool used with no segmentation
says how to get one instead of doing nothing silently. Delete segment's undo brings the segment back
as it was listed (name, colour, codes), not as "Label 1". In the real window, with the mouse."""
import numpy as np
import pytest
from PySide6 import QtCore

from core.labels import Code, Label, LabelMap, LabelTable
from core.volume import Volume

pytest.importorskip("pytestqt")

LIVER = Label(1, "Liver", (200, 100, 60), Code("SCT", "123037004", "Anatomical Structure"),
              Code("SCT", "10200004", "Liver"))


def _status(window) -> str:
    return window.statusBar().currentMessage()


def _show(qtbot, window):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)  # the worklist's first read
    window.set_layout("2d")
    vol = Volume.from_array(np.full((8, 40, 50), 40, np.int16), spacing=(0.8, 0.6, 2.5), modality="CT")
    window.session.set_image(vol, "phantom")
    window.model.set_cursor_index(np.array([25, 20, 4]))
    qtbot.wait(50)
    return vol


def _click(qtbot, window, col, row):
    view = window.views["axial"]
    sr, sc = view.model.display.plane_spacing(view.view)
    pos = view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(col * sc, row * sr)))
    qtbot.mouseClick(view.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)


def test_paint_without_a_segmentation_says_how_to_get_one(qtbot, window):
    _show(qtbot, window)
    window.actions_by_id["tool_paint"].trigger()
    _click(qtbot, window, 25, 20)
    assert window.model.labelmap is None
    assert _status(window) == ("Paint: no segmentation yet — add a segment (New segment, Ctrl+Shift+N) "
                               "or run a model (Ctrl+R)")
    vol = window.session.volume  # a segmentation whose segments were all deleted: nothing to paint into
    window.session.set_labelmap(LabelMap.empty_like(vol.geometry, LabelTable()))
    window.edit_panel.op_buttons["Fill holes"].click()
    assert _status(window).startswith("Fill holes: no segment chosen — add one (New segment, Ctrl+Shift+N)")


def test_stroke_undo_redo_and_delete_say_what_they_changed(qtbot, window):
    vol = _show(qtbot, window)
    window.session.set_labelmap(LabelMap.empty_like(vol.geometry, LabelTable((LIVER,))))
    panel = window.edit_panel
    window.actions_by_id["tool_paint"].trigger()
    panel.radius.setValue(3.0)
    _click(qtbot, window, 25, 20)
    n = int((window.model.labelmap.array == 1).sum())
    assert n > 0 and _status(window) == f"Paint: {n} voxels changed on 1 image slice (Liver +{n})"
    window.actions_by_id["undo"].trigger()
    assert _status(window) == f"Undo paint: {n} voxels changed on 1 image slice (Liver −{n})"
    window.actions_by_id["redo"].trigger()
    assert _status(window) == f"Redo paint: {n} voxels changed on 1 image slice (Liver +{n})"

    panel.label.setCurrentIndex(panel.label.findData(1))
    painted = window.model.labelmap.array.copy()
    panel.delete.click()
    assert _status(window) == f"Delete segment: {n} voxels changed on 1 image slice (Liver −{n})"
    assert window.segments.table.rowCount() == 0 and window.model.labelmap.table.get(1) is None
    panel.undo_button.click()
    assert _status(window) == f"Undo delete: {n} voxels changed on 1 image slice (Liver +{n})"
    assert window.model.labelmap.table.labels == (LIVER,)  # name, colour and codes as they were
    np.testing.assert_array_equal(window.model.labelmap.array, painted)
    assert window.segments.table.rowCount() == 1 and window.segments.table.item(0, 3).text() == "Liver"
    assert panel.label.currentText() == "1 Liver"


@pytest.mark.parametrize("spacing_known,unit", [(True, "mm"), (False, "px")])
def test_grow_from_seeds_says_it_reaches_only_the_strokes_box_plus_its_margin(qtbot, window, spacing_known, unit):
    """Grow from seeds splits only the strokes' bounding box plus 10 mm (10 px without a pixel
    size): its tooltip and its status line say so, as a result cut off at a straight edge looked
    like a failure."""
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    vol = Volume.from_array(np.full((1, 80, 100), 50, np.uint8), spacing=(1.0, 1.0, 1.0),
                            spacing_known=spacing_known, orientation_known=False)
    window.session.set_image(vol, "grow phantom")
    lab = np.zeros(vol.geometry.shape_zyx, np.uint8)
    lab[0, 40:42, 40:42] = 1  # a stroke in the object
    lab[0, 40:42, 55:57] = 2  # and one in the background beside it
    window.session.set_labelmap(LabelMap(lab, vol.geometry, LabelTable.from_names(["Object", "Background"])))
    button = window.edit_panel.op_buttons["Grow from seeds"]
    assert f"bounding box plus 10 {unit}" in button.toolTip()
    with qtbot.waitSignal(window.loaded, timeout=60000):
        button.click()
    out = window.model.labelmap.array[0]
    reach = np.zeros(out.shape, bool)
    reach[30:52, 30:67] = True  # rows 40-41 and columns 40-56, 10 px round them
    assert (out[reach] > 0).all() and not out[~reach].any()  # it stopped there...
    said = _status(window)
    assert said.startswith("Grow from seeds by geodesic: ")
    assert f"only inside the strokes' bounding box plus 10 {unit}" in said  # ...and says so
