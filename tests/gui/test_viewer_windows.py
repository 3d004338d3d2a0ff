"""A viewer step flushes one window (issue 20 item 6): VTK's native window for the 3D view makes no
other widget native (by default Qt gave the slice views, the status bar and the side panel native
windows of their own, each flushed to the display server on its own), and a new probe text
repaints its label alone, not the main window and status bar beneath it."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")


def test_no_widget_but_vtks_is_a_native_window(window):
    from PySide6 import QtWidgets

    vtk = getattr(window.view3d, "widget", None)
    native = [w for w in window.findChildren(QtWidgets.QWidget) if w.internalWinId() and w is not vtk]
    assert native == [], [type(w).__name__ for w in native]
    for view in window.views.values():
        assert not view.internalWinId() and not view.graphics.viewport().internalWinId()


def test_a_crosshair_move_paints_the_views_and_the_probe_label_only(window):
    from PySide6 import QtCore, QtWidgets

    from core.volume import Volume

    arr = (np.arange(30 * 40 * 50) % 200).astype(np.int16).reshape(30, 40, 50)
    window.session.set_image(Volume.from_array(arr, spacing=(1.0, 1.0, 2.0), modality="CT"), "phantom")
    app = QtWidgets.QApplication.instance()
    for _ in range(5):
        app.processEvents()
    painted = []

    class Paints(QtCore.QObject):
        def eventFilter(self, obj, ev) -> bool:
            if ev.type() == QtCore.QEvent.Type.Paint:
                painted.append(obj)
            return False

    spy = Paints()
    app.installEventFilter(spy)
    try:
        before = window.probe_label.text()
        window.model.set_cursor_index(window.model.cursor + 1)
        window.probe.flush()  # held back if the last probe was less than a frame ago (gui.throttle)
        app.processEvents()
    finally:
        app.removeEventFilter(spy)
    viewports = {id(v.graphics.viewport()) for v in window.views.values()}
    assert window.probe_label.text() != before and window.probe_label in painted
    assert {id(w) for w in painted if w is not window.probe_label} <= viewports, \
        [type(w).__name__ for w in painted]
