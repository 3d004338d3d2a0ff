"""Drive the real main window under Xvfb: open images, scroll, move the crosshair, window/level,
segments, layouts, screenshots, errors and cancel."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from core.labels import Label, LabelMap, LabelTable
from core.overlay import HeatMap
from core.volume import Volume
from formats import samples
from formats.dicom.write import write_series
from tests.conftest import ROOT, rotation

pytest.importorskip("pytestqt")


@pytest.fixture
def window(qtbot, tmp_path):
    from gui.app import make_app
    from gui.main_window import MainWindow

    make_app()
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    qtbot.waitExposed(win)
    return win


def _open(qtbot, win, path, **kw):
    with qtbot.waitSignal(win.loaded, timeout=60000):
        win.opener.open_path(str(path), **kw)


def _ct_phantom() -> Volume:
    """A body-like CT: air outside, soft tissue ellipse, a bright 'spine', lungs."""
    z, y, x = np.mgrid[0:24, 0:64, 0:72]
    body = ((x - 36) / 32.0) ** 2 + ((y - 32) / 24.0) ** 2 < 1
    arr = np.where(body, 40, -1000).astype(np.int16)
    arr[((x - 22) / 8.0) ** 2 + ((y - 28) / 12.0) ** 2 < 1] = -850
    arr[((x - 50) / 8.0) ** 2 + ((y - 28) / 12.0) ** 2 < 1] = -850
    arr[((x - 36) / 5.0) ** 2 + ((y - 48) / 5.0) ** 2 < 1] = 700
    arr += (z * 2).astype(np.int16)
    return Volume.from_array(arr, spacing=(0.7, 0.7, 2.5), origin=(-25.0, -22.0, 100.0), modality="CT")


@pytest.fixture
def ct_series(tmp_path):
    folder = tmp_path / "ct"
    write_series(_ct_phantom(), folder, series_description="Phantom CT")
    return folder


def _click(qtbot, view, x_mm, y_mm, button=QtCore.Qt.MouseButton.LeftButton):
    scene = view.viewbox.mapViewToScene(QtCore.QPointF(x_mm, y_mm))
    pos = view.graphics.mapFromScene(scene)
    qtbot.mouseClick(view.graphics.viewport(), button, pos=pos)


def _expected_index(win, view, world):
    axis = win.model.display.sliced_axis(view)
    return int(np.clip(np.rint(win.model.display.grid.world_to_index(world)[axis]), 0,
                       win.model.display.grid.size[axis] - 1))


def test_mni_open_scroll_crosshair_follows_in_world(qtbot, window):
    _open(qtbot, window, samples.path("mni152-t1"))
    vol = window.model.volume
    assert vol.array.shape == (189, 233, 197)
    axial = window.views["axial"]
    start = axial.shown_index
    axial.setFocus()
    qtbot.keyClick(axial, QtCore.Qt.Key.Key_Up)
    qtbot.keyClick(axial, QtCore.Qt.Key.Key_PageUp)
    assert axial.shown_index == start + 11
    np.testing.assert_array_equal(axial.image_item.source, window.model.image[start + 11])
    # click in the coronal view: the axial and sagittal views move to that world point
    coronal = window.views["coronal"]
    sr, sc = window.model.display.plane_spacing("coronal")
    _click(qtbot, coronal, 60 * sc, 70 * sr)
    world = window.model.display.grid.index_to_world([60, window.model.slice_index("coronal"), 70])
    assert window.views["axial"].shown_index == _expected_index(window, "axial", world) == 70
    assert window.views["sagittal"].shown_index == _expected_index(window, "sagittal", world) == 60
    assert "LPS" in window.probe_label.text() and "value" in window.probe_label.text()
    # the sagittal plane is anisotropy-correct: its image spans rows*sr by cols*sc millimetres
    rect = window.views["sagittal"].image_item.boundingRect()
    assert rect.height() == pytest.approx(vol.geometry.size[2] * vol.geometry.spacing[2])


def test_dicom_ct_window_presets_and_right_drag(qtbot, window, ct_series):
    _open(qtbot, window, ct_series)
    assert window.model.volume.modality == "CT"
    assert window.windowTitle().endswith("Phantom CT")
    names = [window.window_level.presets.itemText(i).split("  ")[0] for i in range(window.window_level.presets.count())]
    assert {"Brain", "Lung", "Mediastinum", "Bone", "Liver", "Abdomen", "Subdural", "Stroke"} <= set(names)
    w = window.model.window  # the file's window if it has one, else soft tissue; the list names it
    current = window.window_level.presets.currentText()
    assert current.startswith("From file") if window.model.volume.window_presets else \
        (current.startswith("Abdomen") and (w.center, w.width) == (40, 400))
    window.window_level.apply_preset(names.index("Lung"))
    assert (window.model.window.center, window.model.window.width) == (-600, 1500)
    item = window.views["axial"].image_item
    grey = (item._pixels & 0xFF).astype(int)  # blue channel of the ARGB pixels on screen
    expected = np.clip(np.rint((item.source.astype(float) + 1350) * 255 / 1500), 0, 255)
    np.testing.assert_array_equal(grey, expected)
    # right-drag to the right widens the window (as in ITK-SNAP / Slicer)
    view = window.views["axial"]
    before = window.model.window.width
    viewport = view.graphics.viewport()
    centre = viewport.rect().center()
    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.RightButton, pos=centre)
    for dx in (10, 30, 60):
        QtGui.QGuiApplication.sendEvent(viewport, QtGui.QMouseEvent(
            QtCore.QEvent.Type.MouseMove, QtCore.QPointF(centre + QtCore.QPoint(dx, 0)),
            QtCore.QPointF(viewport.mapToGlobal(centre + QtCore.QPoint(dx, 0))),
            QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.RightButton, QtCore.Qt.KeyboardModifier.NoModifier))
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.RightButton, pos=centre + QtCore.QPoint(60, 0))
    assert window.model.window.width > before
    combo = window.window_level.presets  # a dragged window is no preset: the list shows "Custom"
    assert combo.currentIndex() == -1 and combo.placeholderText() == "Custom"
    # HU under the cursor in the status bar
    assert "HU" in window.probe_label.text()


def test_segments_toggle_heat_map_and_screenshot(qtbot, window, tmp_path):
    _open(qtbot, window, samples.path("mni152-t1"))
    vol = window.model.volume
    window.opener.set_labelmap(samples.mni152_tissue(vol))
    panel = window.segments
    assert panel.table.rowCount() == 2 and panel.table.item(0, 3).text() == "Grey matter"
    assert float(panel.table.item(1, 4).text()) > 100  # white matter volume in ml
    axial = window.views["axial"]
    assert axial.label_item.isVisible() and axial.label_table[1] >> 24 > 0
    panel.table.item(0, 0).setCheckState(QtCore.Qt.CheckState.Unchecked)
    assert 1 in window.model.hidden and axial.label_table[1] >> 24 == 0 and axial.label_table[2] >> 24 > 0
    if window.view3d.available:
        assert window.view3d._actors[1].GetVisibility() == 0 and window.view3d._actors[2].GetVisibility() == 1
    window.segments.outline.setChecked(True)
    plane = axial.label_item.source
    assert 0 < np.count_nonzero(plane) < np.count_nonzero(window.model.labels[axial.shown_index])
    heat = HeatMap.from_values("demo", vol.array.astype(np.float32), vol.geometry, threshold=150)
    window.model.add_heatmap(heat)
    assert len(axial.heat_items) == 1 and axial.heat_items[0].source.shape == axial.image_item.source.shape
    out = tmp_path / "window.png"
    window.save_screenshot(str(out))
    shot = QtGui.QImage(str(out))
    assert shot.width() >= window.width()
    top_left = axial.mapTo(window, QtCore.QPoint(0, 0))
    ratio = shot.width() / window.width()
    centre = shot.pixelColor(int((top_left.x() + axial.width() / 2 + 15) * ratio),
                             int((top_left.y() + axial.height() / 2 + 15) * ratio))
    corner = shot.pixelColor(int((top_left.x() + 30) * ratio), int((top_left.y() + axial.height() - 40) * ratio))
    assert centre != corner  # brain in the middle, background in the corner
    if window.view3d.available:
        frame = window.view3d.screenshot()
        arr = np.array([frame.pixelColor(x, frame.height() // 2).red() for x in range(0, frame.width(), 4)])
        assert arr.std() > 5  # surfaces rendered, not a flat background
    view_png = tmp_path / "axial.png"
    window.save_screenshot(str(view_png), whole_window=False, view="axial")
    assert QtGui.QImage(str(view_png)).width() == axial.width()


def test_layouts_and_shortcut_dialog(qtbot, window):
    _open(qtbot, window, samples.path("mni152-t1"))
    window.set_layout("2d")
    assert not window.view3d.isVisible() and all(v.isVisible() for v in window.views.values())
    window._focused_view = "coronal"
    window.toggle_layout("single")
    assert window.views["coronal"].isVisible() and not window.views["axial"].isVisible()
    window.toggle_layout("single")
    assert window.layout_name == "2d"
    from gui.dialogs import ShortcutsDialog
    from gui.shortcuts import SHORTCUTS

    dlg = ShortcutsDialog(window)
    assert dlg.table.rowCount() == len(SHORTCUTS)
    assert window.actions_by_id["open"].shortcut().toString() == "Ctrl+O"


def test_oblique_and_colour_images(qtbot, window, tmp_path):
    from formats.io import write_image

    arr = np.zeros((20, 30, 40), np.int16)
    arr[5:15, 10:20, 10:30] = 1000
    vol = Volume.from_array(arr, spacing=(1.0, 1.2, 2.0), origin=(5, -10, 30), direction=rotation(0.3, 0.1, -0.2),
                            modality="MR")
    path = tmp_path / "oblique.nii.gz"
    write_image(vol, path)
    _open(qtbot, window, path)
    m = window.model
    assert not m.display.is_view and np.allclose(m.display.grid.direction, np.eye(3))
    # the bright block sits at its world position in the resampled display
    centre_world = vol.geometry.index_to_world([19.5, 14.5, 9.5])
    m.set_cursor_world(centre_world)
    assert m.probe()["value"] == 1000
    assert window.views["axial"].image_item.source.max() == 1000
    _open(qtbot, window, samples.path("us-rgb"))
    assert window.model.volume.is_color and window.views["axial"].image_item.source.ndim == 3
    table = LabelTable((Label(1, "lesion", (255, 0, 0)),))
    lab = np.zeros(window.model.volume.geometry.shape_zyx, np.uint8)
    lab[:, 100:140, 100:160] = 1
    window.opener.set_labelmap(LabelMap(lab, window.model.volume.geometry, table))
    assert window.views["axial"].label_item.source.max() == 1


def test_bad_file_names_it_and_keeps_what_was_open(qtbot, window, tmp_path):
    _open(qtbot, window, samples.path("mni152-t1"))
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b this is not a gzip stream")
    window.opener.open_path(str(bad))
    qtbot.waitUntil(lambda: window._last_error is not None and not window.tasks.busy, timeout=30000)
    assert "broken.nii.gz" in window._last_error.text()
    assert window.model.volume is not None and window.model.volume.array.shape == (189, 233, 197)
    window._last_error.close()


def test_cancel_keeps_the_app_running(qtbot, window, ct_series):
    window.opener.open_path(str(ct_series))
    window.tasks.cancel()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    assert window._last_error is None
    _open(qtbot, window, ct_series)  # and the next open works
    assert window.model.volume.modality == "CT"


def test_series_browser_lists_series(qtbot, tmp_path, ct_series):
    from formats.dicom.scan import list_series
    from gui.dialogs import SeriesDialog

    write_series(Volume.from_array(np.zeros((3, 16, 16), np.int16), modality="MR"), ct_series / "mr",
                 series_description="Tiny MR")
    found = list_series(ct_series)
    dlg = SeriesDialog(str(ct_series), found)
    qtbot.addWidget(dlg)
    texts = {dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())}
    assert texts == {"Phantom CT", "Tiny MR"}
    assert dlg.chosen().series_description == "Phantom CT"  # the largest is preselected


def test_process_exits_cleanly_with_vtk(tmp_path):
    """Qt + VTK teardown: open, render, quit; the interpreter must exit 0."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from PySide6 import QtCore\n"
        "from gui.app import make_app\nfrom gui.main_window import MainWindow\n"
        "from formats import samples\n"
        "app = make_app()\n"
        "w = MainWindow(QtCore.QSettings(%r, QtCore.QSettings.Format.IniFormat)); w.show()\n"
        "w.opener.open_path(str(samples.path('mni152-t1')))\n"
        "w.loaded.connect(lambda: QtCore.QTimer.singleShot(200, app.quit))\n"
        "QtCore.QTimer.singleShot(60000, app.quit)\n"
        "app.exec()\nprint('3d', w.view3d.available)\n"
    ) % (str(ROOT), str(tmp_path / "s.ini"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3d" in proc.stdout


def test_heat_map_file_and_panel_controls(qtbot, window):
    _open(qtbot, window, samples.path("mni152-t1"))
    with qtbot.waitSignal(window.loaded, timeout=60000):
        window.opener.open_heatmap(str(samples.path("mni152-gm")))
    panel = window.heat_panel
    assert panel.layer.currentText().startswith("mni_icbm152_gm") and panel.isEnabled()
    axial = window.views["axial"]
    before = np.count_nonzero(axial.heat_items[0]._pixels >> 24)
    panel.threshold.setValue(200)  # only high grey-matter probability stays visible
    after = np.count_nonzero(axial.heat_items[0]._pixels >> 24)
    assert 0 < after < before
    panel.opacity.setValue(0)
    assert np.count_nonzero(axial.heat_items[0]._pixels >> 24) == 0
    panel.remove.click()
    assert window.model.heatmaps == [] and axial.heat_items == []


def test_run_a_model_in_the_background(qtbot, window, tmp_path):
    from tests.test_inference import make_card

    card = make_card(tmp_path / "models" / "tiny-unet" / "1.0.0", "UNet", spacing=(6.0, 6.0, 6.0))  # few windows
    _open(qtbot, window, samples.path("mni152-t1"))
    with qtbot.waitSignal(window.loaded, timeout=120000):
        window.cases.run_model(card, "cpu")
    assert window.model.labelmap is not None and window.model.labelmap.geometry is window.model.volume.geometry
    assert window.session.run.probabilities.shape[0] == card.n_classes
    assert window.segments.table.rowCount() >= 1
    assert "not for clinical use" in window.statusBar().currentMessage()
    panel = window.explain_panel
    assert panel.label.count() >= 1
    panel.whole.setChecked(True)
    panel.label.setCurrentIndex(panel.label.count() - 1)
    if not window.model.labelmap.array.__eq__(panel.label.currentData()).any():
        return  # a random tiny model may predict nothing of that label: nothing to explain
    with qtbot.waitSignal(window.loaded, timeout=120000):
        panel.method.setCurrentIndex(panel.method.findData("gradcam"))
        panel.start()
    assert window.model.heatmaps[-1].name.startswith("Grad-CAM")
    with qtbot.waitSignal(window.loaded, timeout=120000):
        panel.method.setCurrentIndex(panel.method.findData("uncertainty"))
        panel.start()
    assert window.model.heatmaps[-1].name == "Uncertainty" and "Case uncertainty" in panel.info.text()
    if panel.next.isEnabled():
        before = window.model.cursor.copy()
        panel.next.click()
        assert not np.array_equal(before, window.model.cursor) or len(panel.regions) == 1


def test_import_dialog_builds_the_import_request(qtbot):
    from gui.import_dialog import ImportDialog

    dlg = ImportDialog()
    qtbot.addWidget(dlg)
    dlg.kind.setCurrentIndex(1)
    dlg.path.setText("/x/model.onnx")
    dlg.model_id.setText("liver")
    dlg.labels.setText("1=liver")
    dlg.norm.setCurrentText("ct_window")
    spec = dlg.spec()
    assert (spec.kind, str(spec.path), spec.id, spec.labels) == ("onnx", "/x/model.onnx", "liver", {1: "liver"})
    assert spec.normalisation == {"kind": "ct_window", "low": -1000.0, "high": 1000.0}
    dlg.patch.setText("96,x")
    dlg.accept()  # a malformed field is said in the dialog, which stays open
    assert not dlg.problem.isHidden() and "patch" in dlg.problem.text() and dlg.result() == 0


def test_paint_with_the_mouse_undo_redo_and_locks(qtbot, window):
    _open(qtbot, window, samples.path("mni152-t1"))
    panel = window.edit_panel
    panel.new_segment()
    assert window.model.labelmap is not None and panel.label.currentData() == 1
    panel.tool.setCurrentText("Paint")
    panel.radius.setValue(4.0)
    axial = window.views["axial"]
    sr, sc = window.model.display.plane_spacing("axial")
    viewport = axial.graphics.viewport()

    def at(col, row):
        return axial.graphics.mapFromScene(axial.viewbox.mapViewToScene(QtCore.QPointF(col * sc, row * sr)))

    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, pos=at(80, 100))
    for c in range(82, 121, 4):
        qtbot.mouseMove(viewport, pos=at(c, 100))
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, pos=at(120, 100))
    painted = window.model.labelmap.array.copy()
    k = axial.shown_index
    display_plane = window.model.labels[k]
    assert display_plane[100, 80:121].all() and (painted > 0).sum() == (display_plane > 0).sum()  # one slice
    assert len(panel.history.done) == 1  # a drag is one undo step
    window.actions_by_id["undo"].trigger()
    assert not window.model.labelmap.array.any()
    window.actions_by_id["redo"].trigger()
    assert np.array_equal(window.model.labelmap.array, painted)
    # a locked segment survives painting another one over it
    panel.new_segment()
    window.segments.table.item(0, 5).setCheckState(QtCore.Qt.CheckState.Checked)
    qtbot.mouseClick(viewport, QtCore.Qt.MouseButton.LeftButton, pos=at(100, 103))  # overlaps segment 1
    assert np.array_equal(window.model.labelmap.array == 1, painted == 1)
    assert (window.model.labelmap.array == 2).any()


def test_save_a_correction_to_the_store(qtbot, window, tmp_path):
    from store.corrections import CorrectionsStore
    from tests.test_inference import make_card

    window.settings.setValue("reviewer", "dr.test")
    card = make_card(tmp_path / "models" / "tiny-unet" / "1.0.0", "UNet", spacing=(6.0, 6.0, 6.0))
    _open(qtbot, window, samples.path("mni152-t1"))
    with qtbot.waitSignal(window.loaded, timeout=120000):
        window.cases.run_model(card, "cpu")
    ai = window.model.labelmap.array.copy()
    window.edit_panel.label.setCurrentIndex(0)
    window.edit_panel.tool.setCurrentText("Paint")
    window.edit_panel.on_view("axial", np.array([98.0, 116.0, 94.0]), "click")
    with qtbot.waitSignal(window.loaded, timeout=60000):
        window.cases.save_correction("approved", root=tmp_path / "store")
    with CorrectionsStore(tmp_path / "store") as store:
        (case,) = store.cases("approved")
        info = store.latest(case.id)
        _img, ai2, fixed2 = store.load(case.id)
    assert info["reviewer"] == "dr.test" and info["model_id"] == "tiny-unet"
    np.testing.assert_array_equal(ai2.array, ai)
    np.testing.assert_array_equal(fixed2.array, window.model.labelmap.array)
    assert not np.array_equal(ai, fixed2.array)
    window.worklist.root = tmp_path / "store"
    with qtbot.waitSignal(window.worklist.refreshed, timeout=10000):
        window.worklist.refresh()
    assert window.worklist.table.rowCount() == 1 and window.worklist.table.item(0, 0).text() == "approved"
    edited = window.model.labelmap.array.copy()
    with qtbot.waitSignal(window.loaded, timeout=60000):
        window.worklist.open_row(0)
    np.testing.assert_array_equal(window.model.labelmap.array, edited)


def test_autosave_and_crash_recovery(qtbot, window, tmp_path, monkeypatch):
    from gui.main_window import MainWindow
    from store import recovery

    monkeypatch.setenv("DELINEATE_RECOVERY", str(tmp_path / "recovery" / "case.npz"))
    _open(qtbot, window, samples.path("mni152-t1"))
    assert window.autosaver.autosave(wait=True) is False  # nothing edited yet
    window.edit_panel.new_segment()
    window.edit_panel.tool.setCurrentText("Paint")
    window.edit_panel.on_view("axial", np.array([98.0, 116.0, 94.0]), "click")
    edited = window.model.labelmap.array.copy()
    assert window.autosaver.autosave(wait=True) is True and recovery.pending() is not None
    # "crash": a new window finds the recovery file and restores the edits onto the same image
    other = MainWindow(QtCore.QSettings(str(tmp_path / "s2.ini"), QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    other.show()
    with qtbot.waitSignal(other.loaded, timeout=60000):
        assert other.autosaver.offer(ask=False)
    qtbot.waitUntil(lambda: other.model.labelmap is not None, timeout=30000)
    np.testing.assert_array_equal(other.model.labelmap.array, edited)
    assert other.model.labelmap.table.get(1).name == "Segment 1"


def test_segment_operations_run_in_the_worker_and_undo(qtbot, window):
    _open(qtbot, window, samples.path("mni152-t1"))
    window.opener.set_labelmap(samples.mni152_tissue(window.model.volume))
    panel = window.edit_panel
    panel.label.setCurrentIndex(panel.label.findData(2))
    before = window.model.labelmap.array.copy()
    panel.amount.setValue(2.0)
    with qtbot.waitSignal(window.loaded, timeout=60000):
        panel.op_buttons["Shrink by mm"].click()
    shrunk = window.model.labelmap.array
    assert (shrunk == 2).sum() < (before == 2).sum() and np.array_equal(shrunk == 1, before == 1)
    panel.undo()
    np.testing.assert_array_equal(window.model.labelmap.array, before)
    panel.label.setCurrentIndex(panel.label.findData(1))
    panel.delete_segment()
    assert not (window.model.labelmap.array == 1).any() and window.model.labelmap.table.get(1) is None
    assert window.segments.table.rowCount() == 1
    panel.undo()  # the voxels come back (the list entry is recreated with a default name)
    assert np.array_equal(window.model.labelmap.array == 1, before == 1)
    assert window.segments.table.rowCount() == 2


def test_retrain_action_reports_and_registers(qtbot, window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from core.labels import LabelMap
    from inference.registry import SHIPPED, Registry
    from inference.runner import segment
    from inference.training.synth_us import image
    from store.corrections import CorrectionsStore
    import shutil

    shutil.copytree(SHIPPED / "us-lesion-2d", tmp_path / "models" / "us-lesion-2d")
    base = Registry([tmp_path / "models"]).get("us-lesion-2d")
    rng = np.random.default_rng(3)
    with CorrectionsStore(tmp_path / "store") as store:
        while len(store.cases()) < 8 or not {c.split for c in store.cases()} >= {"train", "holdout"}:
            img, truth = image(rng, hyperechoic=True)
            vol = Volume.from_array(img[None], spacing=(0.3, 0.3, 1.0), modality="US")
            store.save(vol, segment(vol, base, device="cpu").labels,
                       LabelMap(truth[None].astype(np.uint8), vol.geometry, base.labels), state="approved")
    _open(qtbot, window, samples.path("us-rgb"))
    window.session.run = type("S", (), {"card": base})()
    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "information", lambda *a: shown.append(a[2]))
    with qtbot.waitSignal(window.loaded, timeout=120000):
        window.cases.retrain_model(root=tmp_path / "store", out_root=tmp_path / "models", iterations=40)
    assert shown and "held-out Dice" in shown[0]
    assert len(Registry([tmp_path / "models"]).versions("us-lesion-2d")) == 2


def test_retrain_interactive_action_reports_in_the_worker(qtbot, window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from core.labels import LabelMap, LabelTable
    from inference.interactive import net_model
    from store.corrections import CorrectionsStore

    rng = np.random.default_rng(5)
    z, y, x = np.mgrid[:20, :32, :32]
    with CorrectionsStore(tmp_path / "store", holdout_fraction=0.5) as store:
        while not {c.split for c in store.cases()} >= {"train", "holdout"}:
            img = rng.normal(100, 8, (20, 32, 32)).astype(np.float32)
            blob = ((z - 10) / 5.0) ** 2 + ((y - 16) / rng.uniform(5, 8)) ** 2 + ((x - 16) / 6.0) ** 2 < 1
            img[blob] += 70
            vol = Volume.from_array(img, spacing=(1, 1, 2), modality="MR")
            table = LabelTable.from_names(["nodule"])
            store.save(vol, LabelMap(np.zeros(blob.shape, np.uint8), vol.geometry, table),
                       LabelMap(blob.astype(np.uint8), vol.geometry, table), state="approved")
    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "information", lambda *a: shown.append(a[2]))
    with qtbot.waitSignal(window.loaded, timeout=120000):
        window.cases.retrain_interactive(root=tmp_path / "store", out_root=tmp_path / "net", steps=1)
    assert shown and "held-out DSC AUC" in shown[0] and "NOT used" in shown[0]
    assert window.cases.last_retrain["parent_version"] == json.loads(
        (net_model.shipped_folder() / net_model.CARD_NAME).read_text())["version"]
    assert any((tmp_path / "net").glob("*/model.safetensors"))


def test_export_dialog_and_export_in_the_worker(qtbot, window, ct_series, tmp_path):
    from formats.dicom.seg import read_seg
    from gui.export_dialog import ExportDialog

    dlg = ExportDialog(str(tmp_path), "case-seg", False)
    qtbot.addWidget(dlg)
    dlg.format.setCurrentIndex(dlg.format.findData("report"))
    assert dlg.values()["path"].endswith("case-seg.pdf") and not dlg.fractional.isEnabled()
    dlg.format.setCurrentIndex(dlg.format.findData("stl"))
    assert dlg.values()["path"].endswith("case-seg-stl")

    _open(qtbot, window, ct_series)
    arr = np.zeros(window.model.volume.geometry.shape_zyx, np.uint8)
    arr[8:14, 20:40, 25:45] = 1
    window.opener.set_labelmap(LabelMap(arr.copy(), window.model.volume.geometry, LabelTable.from_names(["organ"])))
    window.edit_panel.label.setCurrentIndex(0)
    window.edit_panel.tool.setCurrentText("Erase")
    world = window.model.volume.geometry.index_to_world([35, 30, 10])
    window.edit_panel.on_view("axial", window.model.display.grid.world_to_index(world), "click")
    edited = window.model.labelmap.array.copy()
    assert not np.array_equal(edited, arr)
    window.cases.export_case("seg", str(tmp_path / "out.dcm"), deidentify=True)
    qtbot.waitUntil(lambda: window.cases.last_export is not None, timeout=60000)
    seg_path = window.cases.last_export[0]
    images = window.cases.last_export[1].parent
    from formats.io import read_image

    np.testing.assert_array_equal(read_seg(seg_path, read_image(images).geometry).array, edited)
    window.cases.last_export = None
    window.cases.export_case("stats", str(tmp_path / "stats.csv"))
    qtbot.waitUntil(lambda: window.cases.last_export is not None, timeout=60000)
    text = window.cases.last_export[0].read_text()
    # the draft (before the erase) is known: the statistics compare it with the corrected mask
    dice = float(text.splitlines()[1].split(",")[13])
    assert 0.5 < dice < 1.0


def test_compare_two_models_shows_agreement_and_disagreement_map(qtbot, window, tmp_path):
    from tests.test_inference import make_card

    first = make_card(tmp_path / "models" / "tiny-unet" / "1.0.0", "UNet", spacing=(6.0, 6.0, 6.0))
    other = make_card(tmp_path / "models" / "tiny-seg" / "1.0.0", "SegNet", spacing=(6.0, 6.0, 6.0))
    _open(qtbot, window, samples.path("mni152-t1"))
    with qtbot.waitSignal(window.loaded, timeout=120000):
        window.cases.run_model(first, "cpu")
    shown = window.model.labelmap.array.copy()
    window.cases.compare_model(other, "cpu")
    qtbot.waitUntil(lambda: window.cases.last_comparison is not None, timeout=120000)
    card, rows, n_differ = window.cases.last_comparison
    assert card is other and {r.name for r in rows} >= {"a", "b"}
    heat = [h for h in window.model.heatmaps if h.name.startswith("Disagreement")]
    assert len(heat) == 1 and heat[0].codes.shape == shown.shape and heat[0].codes.max() > 0
    assert n_differ > 0  # two random networks disagree
    np.testing.assert_array_equal(window.model.labelmap.array, shown)  # the mask being reviewed is untouched


def test_model_dialog_shows_the_benchmark_row(qtbot, tmp_path):
    from gui.model_dialog import ModelDialog, benchmark_text
    from inference.benchmark import committed_rows
    from tests.test_inference import make_card

    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "benchmark-us.csv").write_text(
        "model,family,architecture,dice,iou,hd95_mm,hd95_failures,ece,parameters,iterations,train_s,infer_cpu_s,"
        "infer_gpu_s,peak_mib,sane,error\n"
        "SegNet,classic CNN,SegNet,0.81,0.70,3.5,0,0.02,590000,300,120,0.05,,700,True,\n"
        "U-Net,U-Net family,UNet,0.90,0.82,2.0,0,0.01,160000,400,120,0.04,,650,True,\n")
    rows = committed_rows(tmp_path / "bench")
    card = make_card(tmp_path / "m", "SegNet", dims=2, spacing=None, orientation=None, patch=[32, 32])
    text = benchmark_text(card, rows)
    assert "Dice 0.810" in text and "rank 2 of 2" in text
    assert benchmark_text(make_card(tmp_path / "m3", "SegNet"), rows) == ""  # a 3D model: not the 2D task's row
    dlg = ModelDialog([card], [], card, run_text="Compare")
    qtbot.addWidget(dlg)
    assert "Compare" in [b.text() for b in dlg.findChildren(QtWidgets.QPushButton)]


def test_load_a_dicom_seg_of_the_open_series_and_refuse_another_scans(qtbot, window, ct_series, tmp_path):
    from app.actions.exporting import case_from_image, export_case
    from formats.io import write_labelmap

    _open(qtbot, window, ct_series)
    vol = window.model.volume
    arr = np.zeros(vol.geometry.shape_zyx, np.uint8)
    arr[6:12, 18:40, 24:46] = 1
    write_labelmap(LabelMap(arr, vol.geometry, LabelTable.from_names(["lesion"])), tmp_path / "lm.nii.gz")
    seg_path = export_case("seg", case_from_image(str(ct_series), str(tmp_path / "lm.nii.gz")), tmp_path / "s.dcm")[0]
    with qtbot.waitSignal(window.loaded, timeout=60000):
        window.opener.open_segmentation(str(seg_path))
    np.testing.assert_array_equal(window.model.labelmap.array, arr)
    assert window.segments.table.item(0, 3).text() == "lesion"
    other = tmp_path / "other"
    write_series(_ct_phantom(), other, series_description="Another scan")  # a new Frame of Reference
    window.opener.open_path(str(other))
    qtbot.waitUntil(lambda: window.model.volume is not vol and window.model.volume is not None
                    and not window.session.previewing, timeout=60000)
    window._last_error = None
    window.opener.open_segmentation(str(seg_path))
    qtbot.waitUntil(lambda: window._last_error is not None, timeout=60000)
    assert "Frame of Reference" in window._last_error.text() and window.model.labelmap is None
    window._last_error.close()


def test_a_model_run_outside_its_envelope_raises_the_banner(qtbot, window, ct_series, tmp_path, monkeypatch):
    from tests.test_inference import make_card

    card = make_card(tmp_path / "models" / "tiny-unet" / "1.0.0", "UNet", spacing=(6.0, 6.0, 6.0))  # an MR model
    _open(qtbot, window, ct_series)
    assert window.banner.isHidden()
    with qtbot.waitSignal(window.loaded, timeout=120000):
        window.cases.run_model(card, "cpu")
    assert not window.banner.isHidden() and "the image is CT; tiny-unet was made for MR" in window.banner.text()
    from gui.model_dialog import ModelDialog

    asked = []  # a PNG has no model made for it: the window asks instead of running another modality's
    monkeypatch.setattr(ModelDialog, "exec", lambda dlg: (asked.append(dlg), 0)[1])  # the user cancels
    png = tmp_path / "photo.png"
    QtGui.QImage(64, 48, QtGui.QImage.Format.Format_RGB888).save(str(png))
    _open(qtbot, window, png)
    assert window.banner.isHidden()  # a new image: the old run's warning is gone
    window.cases.run_default_model()
    (dlg,) = asked
    assert "no model is made for" in dlg.note.text() and "2D images" in dlg.note.text() and not dlg.note.isHidden()
    assert dlg.cards[0].spatial_dims == 2 and window.model.labelmap is None  # 2D models first; nothing ran
