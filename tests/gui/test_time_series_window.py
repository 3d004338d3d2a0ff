"""A 3D series over time in the real window: the cine bar steps and plays time points, every view
shows that time point's slice where it was (slices, crosshair, zoom), the label map stays."""
import nibabel as nib
import numpy as np
import pytest

from core.display import DisplayGrid
from core.labels import Label, LabelMap, LabelTable
from core.time_series import time_series_of

pytest.importorskip("pytestqt")


def _open(qtbot, win, path):
    with qtbot.waitSignal(win.loaded, timeout=60000):
        win.opener.open_path(str(path))


def _series(path, t=6):
    x = np.arange(24)[:, None, None, None]
    data = (x * 10 + np.arange(t)[None, None, None, :] * 1000
            + np.zeros((24, 20, 10, t))).astype(np.int16)  # each time point brighter
    data += np.random.default_rng(1).integers(0, 9, data.shape).astype(np.int16)
    img = nib.Nifti1Image(data, np.diag([1.2, 1.2, 2.5, 1.0]))
    img.header.set_xyzt_units("mm", "msec")
    img.header["pixdim"][4] = 250.0  # cardiac phases 250 ms apart: 4 fps
    nib.save(img, path)
    return data


def test_stepping_time_points_keeps_views_crosshair_and_labels(qtbot, window, tmp_path):
    data = _series(tmp_path / "cardiac.nii.gz")
    _open(qtbot, window, tmp_path / "cardiac.nii.gz")
    vol, bar = window.model.volume, window.cine
    ts = time_series_of(vol)
    assert ts.count == 6 and window.layout_name != "image"  # three anatomical views, not a 2D loop
    assert bar.isVisible() and bar.cine.frames == 6 and bar.frame == 0
    assert bar.fps.value() == pytest.approx(4.0) and bar.frame_label.text() == "t 1/6  0 s"
    lab = np.zeros(vol.geometry.shape_zyx, np.uint8)
    lab[3:7, 5:12, 8:16] = 1
    window.opener.set_labelmap(LabelMap(lab, vol.geometry, LabelTable((Label(1, "ventricle", (255, 0, 0)),))))
    window.model.set_cursor_index((10, 8, 5))
    axial = window.views["axial"]
    axial.viewbox.scaleBy((0.5, 0.5))  # zoomed in: stepping in time keeps the zoom
    zoom = axial.viewbox.viewRange()
    bar.step(3)
    assert bar.frame == 3 and bar.frame_label.text() == "t 4/6  0.75 s"
    assert window.model.volume is vol and window.session.labelmap.array is not None
    shown = window.model.display.to_display(np.transpose(data[..., 3], (2, 1, 0)))
    for name, view in window.views.items():
        k = window.model.slice_index(name)
        np.testing.assert_array_equal(view.image_item.source, DisplayGrid.take_slice(shown, name, k))
        np.testing.assert_array_equal(view.label_item.source, DisplayGrid.take_slice(window.model.labels, name, k))
        assert view.label_item.isVisible()
    assert list(window.model.cursor) == [10, 8, 5] and axial.viewbox.viewRange() == zoom
    assert window.session.labelmap.array[3:7, 5:12, 8:16].all()  # the case's labels, on every time point
    from vtkmodules.util.numpy_support import vtk_to_numpy

    rendered = window.view3d._volume_actor.GetMapper().GetInput()  # the 3D view renders time point 3 too
    values = vtk_to_numpy(rendered.GetPointData().GetScalars())
    assert values.min() >= 3000 and values.max() < 4000


def test_the_cine_timer_plays_through_time_points(qtbot, window, tmp_path):
    _series(tmp_path / "loop.nii")
    _open(qtbot, window, tmp_path / "loop.nii")
    bar = window.cine
    ts = bar.series
    bar.fps.setValue(50.0)
    bar.play()
    assert bar.playing
    qtbot.waitUntil(lambda: len(ts.reads) >= 7, timeout=10000)  # past the last time point, round again
    bar.pause()
    assert ts.reads[:6] == [1, 2, 3, 4, 5, 0]  # one read per step, in order, looping
    assert window.model.volume.metadata["time_point"] == bar.frame == ts.shown


def test_time_keys_titles_and_heat_maps_on_a_dicom_dynamic_series(qtbot, window, tmp_path):
    """Ctrl+Up/Down step time points from a slice view (Up/Down alone still step slices), Space
    plays and pauses; the views' titles name the time point; a heat map stays with its time point."""
    from PySide6 import QtCore

    from core.overlay import HeatMap
    from gui.shortcuts import SHORTCUTS
    from tests.test_dicom_time import T, Z, _tpi, _volume, _write

    _open(qtbot, window, _write(tmp_path / "dce", _tpi))
    bar, axial = window.cine, window.views["axial"]
    ts = bar.series
    assert ts is not None and ts.count == T and bar.isVisible()
    assert {k for _a, k, _d in SHORTCUTS} >= {"Ctrl+Up", "Ctrl+Down", "Space"}  # listed in the F1 help
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    axial.graphics.setFocus()
    qtbot.waitUntil(lambda: axial.annotations._title.startswith("Axial  t1/3  "), timeout=5000)
    heat = HeatMap.from_values("saliency", np.ones(window.model.volume.geometry.shape_zyx), window.model.volume.geometry)
    window.model.add_heatmap(heat)
    slice_before = window.model.slice_index("axial")
    ctrl = QtCore.Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Up, ctrl)
    assert ts.shown == 1 and window.model.slice_index("axial") == slice_before  # time, not the slice
    np.testing.assert_array_equal(window.model.volume.array, _volume(1).array)
    assert window.model.heatmaps == [] and "made on t 1/3 hidden" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: axial.annotations._title == f"Axial  t2/3  {slice_before + 1}/{Z}", timeout=5000)
    assert window.views["coronal"].annotations._title.startswith("Coronal  t2/3  ")
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Up, ctrl)
    assert ts.shown == 2
    assert bar.loop.isChecked()
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Up, ctrl)  # the last one, looped: the first
    assert ts.shown == 0
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Down, ctrl)  # and back round to the last
    assert ts.shown == 2
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Down, ctrl)
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Down, ctrl)
    assert ts.shown == 0 and window.model.heatmaps == [heat]  # back where it was made
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Up)  # no Ctrl: a slice, not time
    assert ts.shown == 0 and window.model.slice_index("axial") == min(slice_before + 1, Z - 1)
    bar.fps.setValue(50.0)
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Space)
    assert bar.playing
    qtbot.waitUntil(lambda: len(ts.reads) >= 4, timeout=10000)
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Space)
    assert not bar.playing
    np.testing.assert_array_equal(window.model.volume.array, _volume(ts.shown).array)


def test_space_presses_a_button_reached_with_tab_and_plays_otherwise(qtbot, window, tmp_path):
    """Space is the cine's key: after a mouse click left the focus on a button it plays, not presses
    the button again; a button reached with Tab is pressed, as everywhere in Qt."""
    from PySide6 import QtCore, QtWidgets

    _series(tmp_path / "keys.nii")
    _open(qtbot, window, tmp_path / "keys.nii")
    bar = window.cine
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    loop = bar.loop
    assert isinstance(loop, QtWidgets.QAbstractButton)
    was = loop.isChecked()
    window.setAttribute(QtCore.Qt.WidgetAttribute.WA_KeyboardFocusChange, False)
    loop.setFocus(QtCore.Qt.FocusReason.MouseFocusReason)
    qtbot.keyClick(loop, QtCore.Qt.Key.Key_Space)
    assert bar.playing and loop.isChecked() == was  # played; the check box kept its state
    bar.pause()
    loop.setFocus(QtCore.Qt.FocusReason.TabFocusReason)
    window.setAttribute(QtCore.Qt.WidgetAttribute.WA_KeyboardFocusChange, True)  # what Qt sets on Tab
    qtbot.keyClick(loop, QtCore.Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: loop.isChecked() != was, timeout=3000)  # animateClick presses it shortly after
    assert not bar.playing
