"""Editing tools on the slice views: navigate, paint, erase (round brush in mm, on the slice or as a
3D sphere, optionally limited to an intensity range), interactive segmentation from prompts
(gui.interactive_panel), segment operations, undo/redo. A drag is one
stroke and one undo step. The panel only reads its controls: the edits are app.actions.editing on
the case session, the voxel operations core.editing (Qt-free, tested)."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.actions import editing
from app.session import CaseSession, HistoryChanged, ImageOpened
from gui.interactive_panel import InteractivePanel

TOOLS = ("Navigate", "Paint", "Erase", "Interactive")
TIPS = {"Interpolate slices": "Fills the slices between slices you drew on (along the image's slice axis), "
                              "by shape-based interpolation of their outlines"}


class EditPanel(QtWidgets.QWidget):
    tool_changed = QtCore.Signal(str)  # the window points the slice views' left button at on_view

    def __init__(self, session: CaseSession, shell, parent=None) -> None:
        super().__init__(parent)
        self.session, self.model, self.shell = session, session.viewer, shell
        self.tool = QtWidgets.QComboBox()
        self.tool.addItems(TOOLS)
        self.tool.currentTextChanged.connect(self.tool_changed.emit)
        self.label = QtWidgets.QComboBox()
        self.radius = QtWidgets.QDoubleSpinBox()
        self.radius.setRange(0.5, 50.0)
        self.radius.setValue(3.0)
        self.radius.setSuffix(" mm")
        self.sphere = QtWidgets.QCheckBox("3D sphere (else: disc on the slice)")
        self.threshold = QtWidgets.QCheckBox("Only where intensity is within")
        self.low = QtWidgets.QDoubleSpinBox()
        self.high = QtWidgets.QDoubleSpinBox()
        for w in (self.low, self.high):
            w.setRange(-1e6, 1e6)
            w.setDecimals(1)
        self.high.setValue(1000)
        rng = QtWidgets.QHBoxLayout()
        rng.addWidget(self.low)
        rng.addWidget(self.high)
        self.new = QtWidgets.QPushButton("New segment")
        self.new.clicked.connect(self.new_segment)
        self.delete = QtWidgets.QPushButton("Delete segment")
        self.delete.setToolTip("Clears the chosen segment's voxels (undoable) and removes it from the list")
        self.delete.clicked.connect(self.delete_segment)
        self.undo_button = QtWidgets.QPushButton("Undo")
        self.redo_button = QtWidgets.QPushButton("Redo")
        self.undo_button.clicked.connect(lambda: session.undo())
        self.redo_button.clicked.connect(lambda: session.redo())
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Tool", self.tool)
        form.addRow("Segment", self.label)
        form.addRow("Brush", self.radius)
        form.addRow("", self.sphere)
        form.addRow(self.threshold)
        form.addRow("Range", rng)
        seg_row = QtWidgets.QHBoxLayout()
        seg_row.addWidget(self.new)
        seg_row.addWidget(self.delete)
        form.addRow(seg_row)
        form.addRow(row)
        self.amount = QtWidgets.QDoubleSpinBox()
        self.amount.setRange(0.1, 100.0)
        self.amount.setValue(2.0)
        self.amount.setToolTip("mm for grow/shrink/smooth, ml for removing islands")
        form.addRow("Amount (mm / ml)", self.amount)
        grid = QtWidgets.QGridLayout()
        self.op_buttons = {}
        for n, name in enumerate(editing.OPERATIONS):
            b = QtWidgets.QPushButton(name)
            b.clicked.connect(lambda _=False, name=name: self.run_operation(name))
            b.setToolTip(TIPS.get(name, ""))
            grid.addWidget(b, n // 2, n % 2)
            self.op_buttons[name] = b
        form.addRow(grid)
        self.interactive = InteractivePanel(session, shell, self)  # shown while its tool is chosen
        self.interactive.setVisible(False)
        form.insertRow(2, self.interactive)  # under the segment it accepts into
        self.tool.currentTextChanged.connect(lambda name: self._interactive(form, rng, name == "Interactive"))
        self._stroke: Optional[editing.BrushStroke] = None
        self.model.subscribe("segments", self._segments_changed)
        session.subscribe(ImageOpened, lambda _e: self._sync_buttons(HistoryChanged(False, False)))
        session.subscribe(HistoryChanged, self._sync_buttons)
        self._sync_buttons(HistoryChanged(False, False))

    def _interactive(self, form: QtWidgets.QFormLayout, rng: QtWidgets.QLayout, on: bool) -> None:
        """The Interactive tool's controls replace the brush's while it is chosen."""
        for row in (self.radius, self.sphere, self.threshold, rng):
            form.setRowVisible(row, not on)
        self.interactive.set_active(on)

    @property
    def history(self):
        return self.session.history

    def _segments_changed(self) -> None:
        lm = self.model.labelmap
        keep = self.label.currentData()
        self.label.blockSignals(True)
        self.label.clear()
        for lab in (lm.table if lm is not None else []):
            self.label.addItem(f"{lab.value} {lab.name}", lab.value)
        if keep is not None and self.label.findData(keep) >= 0:
            self.label.setCurrentIndex(self.label.findData(keep))
        self.label.blockSignals(False)

    def _sync_buttons(self, event: HistoryChanged) -> None:
        self.undo_button.setEnabled(event.can_undo)
        self.redo_button.setEnabled(event.can_redo)

    def new_segment(self) -> None:
        """Add a segment (creating an empty segmentation on the image grid if there is none)."""
        value = editing.new_segment(self.session)
        if value is not None:
            self.label.setCurrentIndex(self.label.findData(value))

    def delete_segment(self) -> None:
        if self.label.currentData() is not None:
            editing.delete_segment(self.session, int(self.label.currentData()))

    def undo(self) -> None:
        """Ctrl+Z: while an interactive object is being built, its last prompt; else the last edit."""
        if not (self.tool.currentText() == "Interactive" and self.interactive.tool.undo_prompt()):
            self.session.undo()

    def redo(self) -> None:
        self.session.redo()

    def on_view(self, view: str, display_ijk, phase: str) -> None:
        """Left button in a slice view with a paint/erase tool: one dab per event, one undo step per drag."""
        if self.tool.currentText() == "Interactive":
            self.interactive.tool.on_view(view, display_ijk, phase)
            return
        s, value = self.session, self.label.currentData()
        if s.labelmap is None or value is None or s.history is None:
            return
        if phase in ("click", "start") or self._stroke is None:
            self._stroke = editing.BrushStroke(
                s, int(value), self.radius.value(), erase=self.tool.currentText() == "Erase",
                plane_axis=None if self.sphere.isChecked() else editing.plane_axis_for(s, view),
                intensity_range=(self.low.value(), self.high.value()) if self.threshold.isChecked() else None)
        self._stroke.dab(s.labelmap.geometry.world_to_index(s.viewer.display.grid.index_to_world(display_ijk)))
        if phase in ("click", "finish"):
            self._stroke.finish()
            self._stroke = None

    def run_operation(self, name: str) -> None:
        """A whole-segment operation, computed in the worker on a copy (the views keep drawing the
        map meanwhile), then applied as one undo step."""
        s, value = self.session, self.label.currentData()
        if s.labelmap is None or value is None or s.history is None:
            return
        lm, work, amount, locked = s.labelmap, s.labelmap.copy(), self.amount.value(), set(s.locked)
        self.shell.run(name, lambda _p, _c, _part: editing.operation(work, name, int(value), amount, locked),
                       lambda edit: s.apply(edit, write=True) if lm is s.labelmap else None, name)
