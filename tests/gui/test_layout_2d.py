"""2D images and cine loops in the real window: one large image view (no one-pixel panes, no
"Axial", no patient letters when the file gives no orientation), areas in mm²/cm² when the file
gives a pixel size and in pixels when it does not, and cine playback that steps the frames (and
the segments with them) on the Qt timer."""
import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore

from core.labels import Label, LabelMap, LabelTable
from core.statistics import segment_statistics
from core.volume import Volume
from formats import samples
from formats.io import write_image

pytest.importorskip("pytestqt")

TABLE = LabelTable((Label(1, "lesion", (255, 60, 60)),))


def _open(qtbot, win, path):
    with qtbot.waitSignal(win.loaded, timeout=60000):
        win.opener.open_path(str(path))


def _png(path, dpi=None):
    """A grey 80x60 'scan' with a bright disc, saved as a PNG (with a resolution when dpi is given)."""
    y, x = np.mgrid[0:60, 0:80]
    arr = np.where((x - 40) ** 2 + (y - 30) ** 2 < 15 ** 2, 200, 40).astype(np.uint8)
    Image.fromarray(arr).save(path, **({"dpi": (dpi, dpi)} if dpi else {}))
    return path


def _label(win, box_zyx):
    """Label a box of the open image as segment 1 and return how many pixels it has per frame."""
    lab = np.zeros(win.model.volume.geometry.shape_zyx, np.uint8)
    lab[box_zyx] = 1
    win.opener.set_labelmap(LabelMap(lab, win.model.volume.geometry, TABLE))
    return lab


def _size_cell(win) -> str:
    table = win.segments.table
    win.segments.refresh_volumes()
    return table.item(0, 4).text()


def _shown(win):
    return {name for name, v in win.views.items() if v.isVisible()} | ({"3d"} if win.view3d.isVisible() else set())


def test_png_opens_in_one_image_view_with_areas_in_mm2_or_pixels(qtbot, window, tmp_path):
    from gui.slice_view import view_title

    _open(qtbot, window, _png(tmp_path / "with_dpi.png", dpi=254))  # 254 dpi: 0.1 mm pixels
    vol = window.model.volume
    assert vol.spacing_known and not vol.orientation_known and np.allclose(vol.spacing[:2], 0.1)
    assert window.layout_name == "image" and _shown(window) == {"axial"}
    axial = window.views["axial"]
    assert axial.width() > 0.8 * window.centralWidget().width()  # the image has the whole area
    assert window.cine.isHidden() and window.box3d.isHidden()  # one frame: nothing to play; no 3D view
    assert view_title(vol, "axial", 0, 1) == "Image"
    assert "LPS" not in window.probe_label.text() and "pixel (" in window.probe_label.text()

    _label(window, np.s_[0, 10:20, 30:50])  # 10 x 20 = 200 pixels of 0.01 mm²
    header = window.segments.table.horizontalHeaderItem(4).text()
    assert header == "Area" and _size_cell(window) == "2.0 mm²"
    row = segment_statistics(vol, window.model.labelmap)[0]
    assert row["area_px"] == 200 and row["area_mm2"] == pytest.approx(2.0) and row["volume_ml"] is None

    _open(qtbot, window, _png(tmp_path / "plain.png"))  # no resolution: sizes in pixels
    vol = window.model.volume
    assert not vol.spacing_known and window.layout_name == "image"
    _label(window, np.s_[0, 10:20, 30:50])
    assert window.segments.table.horizontalHeaderItem(4).text() == "Area (px²)" and _size_cell(window) == "200 px²"
    row = segment_statistics(vol, window.model.labelmap)[0]
    assert row["area_px"] == 200 and row["area_mm2"] is None

    # a 3D image afterwards gets back the three slices and the 3D view, volumes in ml
    arr = np.zeros((12, 20, 24), np.int16)
    write_image(Volume.from_array(arr, spacing=(1.0, 1.0, 2.0), modality="MR"), tmp_path / "mr.nii.gz")
    _open(qtbot, window, tmp_path / "mr.nii.gz")
    assert window.layout_name == "conventional" and _shown(window) == {"axial", "coronal", "sagittal", "3d"}
    assert window.segments.table.horizontalHeaderItem(4).text() == "Volume (ml)" and window.box3d.isVisible()
    assert view_title(window.model.volume, "axial", 5, 12) == "Axial  6/12"


def test_two_frame_ultrasound_areas_follow_the_frame_and_cine_plays(qtbot, window):
    from gui.slice_view import view_title

    _open(qtbot, window, samples.path("us-2frame"))
    vol = window.model.volume
    # the pixel size comes from the file's ultrasound regions (PhysicalDeltaX/Y in cm)
    assert vol.is_cine and vol.spacing_known and not vol.orientation_known
    assert window.layout_name == "image" and _shown(window) == {"axial"}
    bar, axial = window.cine, window.views["axial"]
    assert bar.isVisible() and bar.cine.frames == 2 and bar.frame == 0  # a loop starts at its first frame
    assert view_title(vol, "axial", 0, 2) == "Image  frame 1/2"

    lab = _label(window, np.s_[0, 200:260, 300:400])  # a lesion drawn on frame 1 only: 6000 pixels
    mm2 = 6000 * vol.spacing[0] * vol.spacing[1]
    assert window.segments.table.horizontalHeaderItem(4).text() == "Area (frame 1)"
    assert _size_cell(window) == f"{mm2 / 100:.2f} cm²"
    assert axial.label_item.source.max() == 1  # the overlay shows on frame 1

    frames = []
    bar.frame_shown.connect(frames.append)
    bar.step(1)  # by hand: frame 2 has no lesion, and the table and the overlay say so
    assert bar.frame == 1 and axial.shown_index == 1 and axial.label_item.source.max() == 0
    assert _size_cell(window) == "0.0 mm²"
    head = window.segments.table.horizontalHeaderItem(4)  # and says it is frame 2's, not the loop's
    assert head.text() == "Area (frame 2)" and "frame shown (frame 2 of 2)" in head.toolTip()

    # playing, looped: the timer steps 2 -> 1 -> 2 -> 1 -> 2, each frame drawn with its own overlay
    frames.clear()
    bar.fps.setValue(50.0)
    bar.play()
    assert bar.playing and bar.timer.interval() == 20
    qtbot.waitUntil(lambda: len(frames) >= 4, timeout=10000)
    bar.pause()
    assert frames[:4] == [0, 1, 0, 1]
    assert window.model.slice_index("axial") == frames[-1]
    assert axial.label_item.source.max() == (1 if frames[-1] == 0 else 0)
    row = segment_statistics(vol, window.model.labelmap)[0]
    assert row["area_frame"] == 1 and row["area_px"] == int(lab[0].sum())
    assert row["area_mm2"] == pytest.approx(mm2, abs=1e-3)

    # without looping, playback stops on the last frame
    bar.loop.setChecked(False)
    bar.step(-5)
    frames.clear()
    bar.play()
    qtbot.waitUntil(lambda: not bar.playing, timeout=10000)
    assert frames == [1] and bar.frame == 1
    bar.slider.setValue(0)  # the slider moves the frame too
    assert window.model.slice_index("axial") == 0 and bar.frame_label.text() == "Frame 1/2"


def test_cine_rate_comes_from_the_file(qtbot, window):
    _open(qtbot, window, samples.path("us-cine"))  # FrameTime 33.333 ms
    bar = window.cine
    assert window.model.volume.frame_time_ms == pytest.approx(33.333)
    assert bar.cine.frames == 120 and bar.fps.value() == pytest.approx(30.0, abs=0.05)
    assert "30 fps" in bar.fps.toolTip()
    bar.fps.setValue(10.0)  # or chosen
    bar.play()
    assert bar.timer.interval() == 100
    bar.pause()


def test_layout_image_from_the_view_menu_and_back(qtbot, window, tmp_path):
    _open(qtbot, window, _png(tmp_path / "a.png", dpi=254))
    window.toggle_layout("single")
    assert _shown(window) == {"axial"}
    window.set_layout("conventional")
    assert window.layout_name == "conventional"
    window.actions_by_id["layout_image"].trigger()
    assert window.layout_name == "image" and _shown(window) == {"axial"}
    assert window.actions_by_id["layout_image"].shortcut().toString() == "Ctrl+5"
    window.cine.play()  # one frame: nothing to play
    assert not window.cine.playing
    QtCore.QCoreApplication.processEvents()


def test_a_grey_loop_is_frames_not_a_volume(qtbot, window):
    arr = np.random.default_rng(0).integers(0, 200, (5, 32, 40)).astype(np.uint8)
    loop = Volume.from_array(arr, modality="US", metadata={"frames_are_time": True}, spacing_known=False,
                             orientation_known=False, frame_time_ms=100.0)
    window.session.set_image(loop, "loop")
    assert window.layout_name == "image" and window.cine.isVisible() and window.cine.cine.frames == 5
    assert window.cine.fps.value() == pytest.approx(10.0) and window.cine.frame == 0
    assert window.view3d._volume_actor is None  # no volume rendering of frames in time (hidden anyway)
    window.cine.step(3)
    assert window.views["axial"].shown_index == 3 and window.cine.frame_label.text() == "Frame 4/5"


def test_stepping_a_loop_wraps_round_while_loop_is_on_from_the_buttons_and_ctrl_up_down(qtbot, window):
    """Ctrl+Up / Ctrl+Down step a loop's frames from the image view ("next frame of a loop");
    with Loop on, past the last frame comes the first and before the first the last, as when
    playing; with Loop off the ends stay."""
    arr = np.random.default_rng(0).integers(0, 200, (5, 32, 40)).astype(np.uint8)
    loop = Volume.from_array(arr, modality="US", metadata={"frames_are_time": True}, spacing_known=False,
                             orientation_known=False, frame_time_ms=100.0)
    window.session.set_image(loop, "loop")
    bar, view = window.cine, window.views["axial"]
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    view.graphics.setFocus()
    ctrl, up, down = QtCore.Qt.KeyboardModifier.ControlModifier, QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_Down
    assert bar.loop.isChecked() and bar.frame == 0
    qtbot.keyClick(view.graphics.viewport(), up, ctrl)
    assert bar.frame == 1 and view.shown_index == 1
    qtbot.keyClick(view.graphics.viewport(), down, ctrl)
    qtbot.keyClick(view.graphics.viewport(), down, ctrl)  # before the first: the last
    assert bar.frame == 4 and view.shown_index == 4 and bar.frame_label.text() == "Frame 5/5"
    qtbot.keyClick(view.graphics.viewport(), up, ctrl)  # past the last: the first
    assert bar.frame == 0
    bar.back.click()
    assert bar.frame == 4
    bar.forward.click()
    assert bar.frame == 0 and not bar.playing
    bar.loop.setChecked(False)
    qtbot.keyClick(view.graphics.viewport(), down, ctrl)
    bar.back.click()
    assert bar.frame == 0
    bar.step(10)
    qtbot.keyClick(view.graphics.viewport(), up, ctrl)
    assert bar.frame == 4


def test_a_dynamic_single_slice_nifti_plays_as_a_loop(qtbot, window, tmp_path):
    """A dynamic series of one slice (x, y, 1, t: cardiac cine, perfusion) opens as frames in its
    plane, played at the header's frame time (pixdim[4] in ms)."""
    import nibabel as nib

    frames = np.stack([np.roll(_png_array(), 3 * t, axis=1) for t in range(6)], axis=-1)  # y, x, t
    img = nib.Nifti1Image(frames.transpose(1, 0, 2)[:, :, None, :].astype(np.int16), np.diag([0.8, 0.8, 6.0, 1.0]))
    img.header.set_xyzt_units("mm", "msec")
    img.header["pixdim"][4] = 50.0
    nib.save(img, tmp_path / "dynamic.nii.gz")
    _open(qtbot, window, tmp_path / "dynamic.nii.gz")
    vol = window.model.volume
    assert vol.is_cine and not vol.warnings and vol.frame_time_ms == pytest.approx(50.0)
    np.testing.assert_array_equal(vol.array[4], frames[:, :, 4])  # the grid's direction carries RAS -> LPS
    assert window.layout_name == "image" and window.cine.cine.frames == 6
    assert window.cine.fps.value() == pytest.approx(20.0)
    window.cine.step(4)
    assert window.views["axial"].shown_index == 4


def _png_array():
    y, x = np.mgrid[0:60, 0:80]
    return np.where((x - 40) ** 2 + (y - 30) ** 2 < 15 ** 2, 200, 40).astype(np.uint8)


def test_the_side_panel_never_scrolls_sideways_on_a_2d_image(qtbot, window):
    """A 2D image relabels the Edit box in mm² ("Remove islands < mm²"), wider than the ml labels the
    panel was sized for: the panel widens, and no horizontal scroll bar hides part of it."""
    from pydicom.data import get_testdata_file
    from PySide6 import QtWidgets

    _open(qtbot, window, get_testdata_file("CT_small.dcm"))
    qtbot.wait(100)
    for width, height in ((1280, 800), (1366, 768)):
        window.resize(width, height)
        qtbot.wait(200)
        scroll = next(s for s in window.findChildren(QtWidgets.QScrollArea) if s.isVisible())
        assert "mm²" in window.edit_panel._amount_label.text()
        assert not scroll.horizontalScrollBar().isVisible(), (width, scroll.widget().minimumSizeHint().width(),
                                                               scroll.viewport().width())
