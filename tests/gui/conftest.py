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
