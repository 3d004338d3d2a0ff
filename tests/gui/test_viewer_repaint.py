"""What the slice views repaint in part (issue 20 item 6) is what a whole repaint draws: a view
whose crosshair line alone moved shows on screen exactly the letters, title, scale bar and lines a
whole repaint draws; the annotation layer is blended only where it has pixels, and it has none
outside those rectangles; a new probe text in the status bar lays out nothing else."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")


def _pixels(image, keep_alpha: bool = False) -> np.ndarray:
    from PySide6 import QtGui

    if not keep_alpha:
        image = image.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    words = np.frombuffer(image.constBits(), np.uint32, count=image.height() * image.bytesPerLine() // 4)
    return words.reshape(image.height(), -1)[:, :image.width()].copy()


def _on_screen(app, window, view) -> np.ndarray:
    """The view's pixels as the display server has them (what partial repaints left there)."""
    vp = view.graphics.viewport()
    at = vp.mapTo(window, vp.rect().topLeft())
    shot = app.primaryScreen().grabWindow(window.winId()).toImage()
    return _pixels(shot.copy(at.x(), at.y(), vp.width(), vp.height()))


def test_views_repainted_in_part_show_what_a_whole_repaint_draws(window, qtbot):
    from PySide6 import QtWidgets

    from core.volume import Volume

    # one grey: Qt's scaled drawing of the image may pick a neighbouring source row at the edge of a
    # clipped repaint (its own rounding, not ours), which a uniform image does not show
    vol = Volume.from_array(np.full((40, 90, 100), 40, np.int16), spacing=(1.0, 1.0, 2.5), modality="CT")
    window.session.set_image(vol, "phantom")
    app = QtWidgets.QApplication.instance()
    model = window.model
    for _ in range(5):
        app.processEvents()
    for step in range(4):  # coronal and sagittal keep their slice: only their crosshair line moves
        model.scroll("axial", 3)
        app.processEvents()
        for name in ("coronal", "sagittal"):
            view = window.views[name]
            whole = _pixels(view.graphics.viewport().grab().toImage())
            np.testing.assert_array_equal(_on_screen(app, window, view), whole, err_msg=f"{name} step {step}")


def test_annotation_boxes_hold_every_pixel_the_layer_has(window):
    from PySide6 import QtCore, QtGui

    from gui.view_annotations import drawn_boxes

    for dpr in (1.0, 1.5):
        layer = QtGui.QImage(int(300 * dpr), int(200 * dpr), QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        layer.setDevicePixelRatio(dpr)
        layer.fill(QtCore.Qt.GlobalColor.transparent)
        p = QtGui.QPainter(layer)
        p.setPen(QtGui.QColor("#f0f0a0"))
        for rect, text in ((QtCore.QRect(4, 0, 20, 200), "R"), (QtCore.QRect(280, 0, 16, 200), "L"),
                           (QtCore.QRect(0, 2, 300, 16), "A"), (QtCore.QRect(200, 170, 80, 20), "2 cm")):
            p.drawText(rect, QtCore.Qt.AlignmentFlag.AlignCenter, text)
        p.drawLine(200, 190, 280, 190)
        p.end()
        alpha = _pixels(layer, keep_alpha=True) >> 24
        covered = np.zeros_like(alpha, dtype=bool)
        boxes = drawn_boxes(layer)
        for b in boxes:
            assert b == b.toAlignedRect()  # whole pixels of the view
            covered[int(b.top() * dpr):int(np.ceil(b.bottom() * dpr)), int(b.left() * dpr):int(np.ceil(b.right() * dpr))] = True
        assert alpha.any() and not (alpha.astype(bool) & ~covered).any()
        assert covered.mean() < 0.1  # a few letters' worth, not the view
        assert len(boxes) >= 4


def test_crosshair_moves_update_the_probe_text_without_laying_the_window_out(window, qtbot):
    """The status bar's probe text follows the crosshair; a new text lays out nothing beyond its
    own holder (the main window's layout was recomputed on every move: ~0.8 ms a step)."""
    from PySide6 import QtCore, QtWidgets

    from core.volume import Volume

    window.session.set_image(Volume.from_array(np.arange(20 * 30 * 40, dtype=np.int16).reshape(20, 30, 40),
                                               spacing=(1.0, 1.0, 2.0), modality="CT"), "ramp")
    app = QtWidgets.QApplication.instance()
    app.processEvents()
    requests = []

    class Count(QtCore.QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QtCore.QEvent.Type.LayoutRequest:
                requests.append(obj)
            return False

    counter = Count()
    for w in (window, window.statusBar()):
        w.installEventFilter(counter)
    texts = []
    for i in range(5):
        window.model.set_cursor_index([3 + i, 4 + 2 * i, 5 + i])
        window.probe.flush()  # the probe follows at display rate (gui.throttle): here every move
        app.processEvents()
        texts.append(window.probe_label.text())
    for w in (window, window.statusBar()):
        w.removeEventFilter(counter)
    assert requests == []
    assert len(set(texts)) == 5 and texts[-1].startswith("voxel (7, 12, 9)")  # x, y, z of the last move
    label = window.probe_label
    assert label.isVisible() and label.geometry() == label.parentWidget().rect()
    assert label.mapTo(window, QtCore.QPoint(0, 0)).y() > window.statusBar().mapTo(window, QtCore.QPoint(0, 0)).y() - 1
