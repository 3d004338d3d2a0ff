"""A label whose new text does not lay the window out again.

QLabel.setText tells its parent's layout that its size may have changed; in the status bar that
reaches the main window's layout, recomputed on every crosshair move and mouse hover that changes
the probe text (~0.8 ms a step of the viewer bench, more than the status bar's repaint). Held in a
widget without a layout, the request stops at the holder: it takes the label's place and size
policy in the layout, and the label fills it, so both look as before."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class SteadyHolder(QtWidgets.QWidget):
    def __init__(self, label: QtWidgets.QLabel, parent=None) -> None:
        super().__init__(parent)
        self.label = label
        label.setParent(self)
        self.setSizePolicy(label.sizePolicy())

    def sizeHint(self) -> QtCore.QSize:
        return self.label.sizeHint()

    def minimumSizeHint(self) -> QtCore.QSize:
        return self.label.minimumSizeHint()

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:
        self.label.setGeometry(self.rect())


def steady(label: QtWidgets.QLabel) -> SteadyHolder:
    """``label`` in a holder to put in a layout in its place (its size policy must not depend on
    its text: a single line, its width set by the layout)."""
    return SteadyHolder(label)
