"""Fixtures the GUI tests share."""
import pytest


@pytest.fixture
def bar(qtbot):
    """A task runner in the status bar, wound down (workers finished) after the test."""
    from gui.workers import TaskBar

    bar = TaskBar()
    qtbot.addWidget(bar)
    yield bar
    assert bar.wait(5000)


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window with its own settings file, shown; its tasks wound down after the test."""
    from PySide6 import QtCore

    from gui.app import make_app
    from gui.main_window import MainWindow

    make_app()
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1300, 850)
    win.show()
    qtbot.waitExposed(win)
    yield win
    assert win.tasks.wait(10000)
