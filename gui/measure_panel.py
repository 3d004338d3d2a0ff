"""The Measurements box: choose ruler / angle / ellipse ROI (click the chosen one again to stop),
RECIST axes of a segment, and the list of the case's measurements with their values (Delete removes
the selected one)."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.actions import measuring
from app.session import CaseSession, MeasurementsChanged
from core.errors import DelineateError
from core.measurements import text, values
from gui.measure_tool import MeasureTool

BUTTONS = (("ruler", "Ruler"), ("angle", "Angle"), ("ellipse", "Ellipse ROI"))


class MeasurePanel(QtWidgets.QWidget):
    def __init__(self, session: CaseSession, tool: MeasureTool, parent=None) -> None:
        super().__init__(parent)
        self.session, self.tool = session, tool
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        self.buttons = {}
        for mode, title in BUTTONS:
            b = QtWidgets.QPushButton(title)
            b.setCheckable(True)
            b.clicked.connect(lambda on, mode=mode: tool.set_mode(mode if on else None))
            row.addWidget(b)
            self.buttons[mode] = b
        lay.addLayout(row)
        recist_row = QtWidgets.QHBoxLayout()
        self.segment = QtWidgets.QComboBox()
        self.recist_button = QtWidgets.QPushButton("RECIST axes")
        self.recist_button.setToolTip("Longest diameter of the segment on the slice where it is largest, and the "
                                      "longest diameter perpendicular to it (mm)")
        self.recist_button.clicked.connect(self.add_recist)
        recist_row.addWidget(self.segment, 1)
        recist_row.addWidget(self.recist_button)
        lay.addLayout(recist_row)
        self.list = QtWidgets.QListWidget()
        self.list.setMinimumHeight(70)
        self.list.itemDoubleClicked.connect(lambda _i: self.go_to(self.list.currentRow()))
        lay.addWidget(self.list)
        self.delete = QtWidgets.QPushButton("Delete")
        self.delete.clicked.connect(self.delete_selected)
        delete_key = QtGui.QShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Delete), self.list)
        delete_key.setContext(QtCore.Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self.delete_selected)
        lay.addWidget(self.delete)
        tool.mode_changed.connect(self._mode_changed)
        session.subscribe(MeasurementsChanged, lambda _e: self.refresh())
        session.viewer.subscribe("segments", self._segments)

    def _mode_changed(self, mode) -> None:
        for name, b in self.buttons.items():
            b.setChecked(name == mode)

    def _segments(self) -> None:
        lm = self.session.labelmap
        self.segment.clear()
        for lab in (lm.table if lm is not None else []):
            self.segment.addItem(f"{lab.value} {lab.name}", lab.value)

    def refresh(self) -> None:
        self.list.clear()
        for n, m in enumerate(self.session.measurements, 1):
            self.list.addItem(f"{n}. {m.kind}: {text(m, values(m, self.session.volume)).replace(chr(10), '; ')}")

    def add_recist(self) -> None:
        value = self.segment.currentData()
        if value is None:
            return
        try:
            m = measuring.add_recist(self.session, int(value))
        except DelineateError as exc:
            self.tool.failed.emit(f"RECIST: {exc}")
            return
        if m is None:
            self.tool.failed.emit(f"RECIST: segment {self.segment.currentText()} is empty")
        else:
            self.tool.report(m)
            self.go_to(len(self.session.measurements) - 1)

    def go_to(self, index: int) -> None:
        """Move the crosshair to a measurement's first point (its slice shows on the views)."""
        if 0 <= index < len(self.session.measurements) and self.session.viewer.display is not None:
            self.session.viewer.set_cursor_world(self.session.measurements[index].array[0])

    def delete_selected(self) -> None:
        measuring.remove(self.session, self.list.currentRow())
