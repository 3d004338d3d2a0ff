"""The slice views' crosshair and layers repaint without going through their scenes (issue 20 item 6):
a crosshair move that changes all three views makes Qt repaint the window once, not once a view;
each view's lines are drawn through the cursor in the view's colour over the segments; the pixels
a moved line leaves are repainted on screen."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")


def _pixels(image) -> np.ndarray:
    from PySide6 import QtGui

    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    words = np.frombuffer(image.constBits(), np.uint32, count=image.height() * image.bytesPerLine() // 4)
    return words.reshape(image.height(), -1)[:, :image.width()].copy() & 0xFFFFFF


def _open(window, value: int = 40):
    """A uniform CT (Qt's scaled drawing of a clipped repaint may pick a neighbouring source row:
    its rounding, not ours) with one segment over all of it."""
    from core.labels import LabelMap, LabelTable
    from core.volume import Volume

    vol = Volume.from_array(np.full((30, 60, 70), value, np.int16), spacing=(1.0, 1.0, 2.0), modality="CT")
    window.session.set_image(vol, "uniform")
    window.session.set_labelmap(LabelMap(np.ones(vol.array.shape, np.uint8), vol.geometry,
                                         LabelTable.from_names(["body"])))


def _settle(app, n: int = 5) -> None:
    for _ in range(n):
        app.processEvents()


def test_a_crosshair_move_repaints_the_window_once(window):
    from PySide6 import QtCore, QtWidgets

    _open(window)
    app = QtWidgets.QApplication.instance()
    _settle(app)
    updates = []

    class Count(QtCore.QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QtCore.QEvent.Type.UpdateRequest and obj is window:
                updates.append(obj)
            return False

    counter = Count()
    app.installEventFilter(counter)
    try:
        painted = []
        for i in range(4):
            before = {name: v.shown_index for name, v in window.views.items()}
            window.model.set_cursor_index([20 + i, 25 + i, 10 + i])  # every view changes slice
            updates.clear()
            _settle(app)
            painted.append(len(updates))
            assert all(v.shown_index != before[name] for name, v in window.views.items())
    finally:
        app.removeEventFilter(counter)
    assert painted == [1, 1, 1, 1]  # one repaint of the window for all three views (was one a view)


def test_lines_through_the_cursor_over_the_segments_and_cleared_when_moved(window):
    from PySide6 import QtCore, QtGui, QtWidgets

    from gui.slice_view import VIEW_COLORS

    _open(window)
    app = QtWidgets.QApplication.instance()
    _settle(app)
    model = window.model
    for step in range(3):
        model.set_cursor_index([30 + 3 * step, 20 + 5 * step, 8 + 2 * step])
        _settle(app)
        shot = app.primaryScreen().grabWindow(window.winId()).toImage()
        for name, view in window.views.items():
            vp = view.graphics.viewport()
            at = vp.mapTo(window, vp.rect().topLeft())
            on_screen = _pixels(shot.copy(at.x(), at.y(), vp.width(), vp.height()))
            whole = _pixels(vp.grab().toImage())
            np.testing.assert_array_equal(on_screen, whole, err_msg=f"{name} step {step}")  # nothing left behind
            # the lines cross where the cursor is, in the view's colour, over the segment layer
            sr, sc = view.grid.plane_spacing(name)
            r_axis, c_axis = view.grid.plane_axes(name)
            centre = view.viewbox.mapViewToDevice(QtCore.QPointF(model.cursor[c_axis] * sc, model.cursor[r_axis] * sr))
            x, y = int(round(centre.x())), int(round(centre.y()))
            colour = QtGui.QColor(VIEW_COLORS[name]).rgb() & 0xFFFFFF
            image_rect = view.viewbox.mapViewToDevice(view.image_item.boundingRect()).boundingRect().toAlignedRect()
            inside = image_rect.intersected(vp.rect().adjusted(30, 30, -30, -30))  # away from letters and title
            part = whole[inside.top():inside.bottom(), inside.left():inside.right()] == colour
            # the line's pixels: within a pixel of the cursor's position (Qt rounds the line's half pixels)
            rows = part.mean(axis=1) > 0.8  # the title, scale bar or colour bar may sit on part of it
            cols = part.mean(axis=0) > 0.8
            assert rows.sum() == 1 and abs(inside.top() + int(np.argmax(rows)) - y) <= 1, name
            assert cols.sum() == 1 and abs(inside.left() + int(np.argmax(cols)) - x) <= 1, name
            assert part.mean() < 0.1  # two lines, nothing else in their colour
