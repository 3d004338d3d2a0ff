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


def run(path: Optional[str] = None) -> int:
    from formats import samples
    from gui.main_window import MainWindow

    app = make_app()
    win = MainWindow()
    win.show()
    win.open_path(path or samples.path())
    code = app.exec()
    del win
    return code
