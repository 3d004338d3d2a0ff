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


@pytest.fixture(autouse=True)
def unsaved_answers(monkeypatch):
    """The "Save the corrections…?" question, answered without a modal box: Discard unless a test
    puts another answer first in the list (a closing window asks too, when the test leaves edits).
    Each question asked is kept in ``.asked``, as (case, doing)."""
    from gui import dialogs

    class Answers(list):
        asked: list

    answers = Answers()
    answers.asked = []

    def ask(_parent, case, doing):
        answers.asked.append((case, doing))
        return answers.pop(0) if answers else dialogs.DISCARD

    monkeypatch.setattr(dialogs, "ask_save_corrections", ask)
    return answers
