"""View > Side panel (Ctrl+0) hides the side panel so the views take its room, and brings it back:
on a small or HiDPI-scaled screen (QT_SCALE_FACTOR=2 on a 1600-pixel screen) the panel takes
about half the width."""
from PySide6 import QtWidgets


def test_ctrl_0_hides_the_side_panel_the_views_take_its_room_and_it_comes_back(window, qtbot):
    app = QtWidgets.QApplication.instance()
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    action = window.actions_by_id["toggle_panel"]
    assert action.shortcut().toString() == "Ctrl+0"
    views = window.centralWidget()
    assert window.side_dock.isVisible()
    width = views.width()
    action.trigger()
    app.processEvents()
    assert not window.side_dock.isVisible() and views.width() > width + 250
    action.trigger()
    app.processEvents()
    assert window.side_dock.isVisible() and abs(views.width() - width) <= 2


def test_the_side_panel_action_is_checked_while_the_panel_shows_however_it_was_closed(window, qtbot):
    app = QtWidgets.QApplication.instance()
    action = window.actions_by_id["toggle_panel"]
    assert action.isCheckable() and action.isChecked() and window.side_dock.isVisible()
    window.side_dock.close()  # the dock's ×
    app.processEvents()
    assert not window.side_dock.isVisible() and not action.isChecked()
    action.trigger()  # View > Side panel brings it back, checked
    app.processEvents()
    assert window.side_dock.isVisible() and action.isChecked()
    action.trigger()
    app.processEvents()
    assert not window.side_dock.isVisible() and not action.isChecked()
    action.trigger()
    window.hide()  # unseen with its window, not hidden by anyone: still checked
    app.processEvents()
    assert not window.side_dock.isVisible() and action.isChecked()
    window.show()
    qtbot.waitExposed(window)
    assert window.side_dock.isVisible() and action.isChecked()
