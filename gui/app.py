"""Application start-up: the main window, opening the given path (or the bundled sample)."""
from __future__ import annotations

import sys
from typing import Optional


def make_app():
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("Delineate")
    app.setOrganizationName("Delineate")
    pg.setConfigOptions(antialias=False)
    return app


def display_problem() -> Optional[str]:
    """Why no window can open here (Linux without an X or Wayland display: Qt would abort with a
    page about platform plugins), or None."""
    import os

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if (sys.platform.startswith("linux") and platform in ("", "xcb", "wayland")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        return ("no display to open the viewer on (DISPLAY is not set): run it in a desktop session, "
                "under xvfb-run, or use a command (main.py --help)")
    return None


def run(path: Optional[str] = None, model: bool = True) -> int:
    """Open ``path`` (default: the bundled sample) and, for the sample, run its default model."""
    if (problem := display_problem()) is not None:
        from core.errors import DelineateError

        raise DelineateError(problem)
    from app.logs import start as start_log
    from formats import samples
    from gui import startup_probe
    from gui.main_window import MainWindow

    app = make_app()
    start_log("gui")  # no-op after main.py's cli.entry started it
    from PySide6 import QtCore

    from gui.worklist import apply_store_setting

    apply_store_setting(QtCore.QSettings("Delineate", "Delineate"))  # before anything opens the store
    win = MainWindow()
    if startup_probe.wanted():
        startup_probe.install(app, win)
    win.show()
    if path is None and win.autosaver.offer():
        return app.exec()
    if path is None and model:
        def first_load() -> None:
            win.loaded.disconnect(first_load)
            win.cases.run_default_model()

        win.loaded.connect(first_load)
        from app.actions.segmenting import prefetch

        # the sample's model will run: torch and MONAI import in a thread while the sample decodes,
        # from the window's first paint on (the window never waits for torch)
        _after_first_paint(app, win, prefetch)
    from PySide6 import QtCore

    # after the first paint: opening imports the readers (pydicom, SimpleITK), which the window need not wait for
    QtCore.QTimer.singleShot(0, lambda: win.opener.open_path(path or samples.path()))
    code = app.exec()
    del win
    return code


def _after_first_paint(app, window, fn) -> None:
    """Call ``fn`` once, from the event loop, after ``window`` has first painted."""
    from PySide6 import QtCore, QtWidgets

    class Filter(QtCore.QObject):
        def eventFilter(self, obj, event) -> bool:
            if (event.type() == QtCore.QEvent.Type.Paint and isinstance(obj, QtWidgets.QWidget)
                    and obj.window() is window):
                app.removeEventFilter(self)
                QtCore.QTimer.singleShot(0, fn)
            return False

    app.installEventFilter(Filter(window))  # parented to the window: lives as long as it
