"""Editing tools on the slice views: navigate, paint, erase (round brush in mm, on the slice or as a
3D sphere, optionally limited to an intensity range), with unlimited undo/redo. A drag is one
stroke and one undo step. The operations themselves are core.editing (Qt-free, tested)."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6 import QtCore, QtWidgets

from core import editing
from core.labels import Label, LabelMap, LabelTable, default_color
from core.viewer_model import ViewerModel

TOOLS = ("Navigate", "Paint", "Erase")


class EditPanel(QtWidgets.QWidget):
    def __init__(self, model: ViewerModel, window, parent=None) -> None:
        super().__init__(parent)
        self.model, self.window = model, window
        self.tool = QtWidgets.QComboBox()
        self.tool.addItems(TOOLS)
        self.tool.currentTextChanged.connect(self._tool_changed)
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
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)
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
        ops = (("Fill holes", lambda lm, v, a, lk: editing.fill_holes(lm, v, lk)),
               ("Keep largest", lambda lm, v, a, lk: editing.remove_islands(lm, v, None, lk)),
               ("Remove islands < ml", lambda lm, v, a, lk: editing.remove_islands(lm, v, a, lk)),
               ("Grow by mm", lambda lm, v, a, lk: editing.grow_shrink(lm, v, a, lk)),
               ("Shrink by mm", lambda lm, v, a, lk: editing.grow_shrink(lm, v, -a, lk)),
               ("Smooth (mm)", lambda lm, v, a, lk: editing.smooth(lm, v, a, lk)),
               ("Interpolate slices", lambda lm, v, a, lk: editing.interpolate_slices(lm, v, 0, lk)))
        self.op_buttons = {}
        for n, (text, fn) in enumerate(ops):
            b = QtWidgets.QPushButton(text)
            b.clicked.connect(lambda _=False, t=text, f=fn: self.run_operation(t, f))
            if text == "Interpolate slices":
                b.setToolTip("Fills the slices between slices you drew on (along the image's slice axis), "
                             "by shape-based interpolation of their outlines")
            grid.addWidget(b, n // 2, n % 2)
            self.op_buttons[text] = b
        form.addRow(grid)
        self.history: Optional[editing.History] = None
        self._stroke: list = []
        self._last = None  # the previous dab of the stroke (label-map index)
        model.subscribe("segments", self._segments_changed)
        model.subscribe("image", self._image_changed)
        self._sync_buttons()

    # -- state ---------------------------------------------------------------------------------
    def _image_changed(self) -> None:
        self.history = None
        self._sync_buttons()

    def _segments_changed(self) -> None:
        lm = self.model.labelmap
        if lm is not None and (self.history is None or self.history.lm is not lm):
            self.history = editing.History(lm)
        keep = self.label.currentData()
        self.label.blockSignals(True)
        self.label.clear()
        for lab in (lm.table if lm is not None else []):
            self.label.addItem(f"{lab.value} {lab.name}", lab.value)
        if keep is not None and self.label.findData(keep) >= 0:
            self.label.setCurrentIndex(self.label.findData(keep))
        self.label.blockSignals(False)
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        h = self.history
        self.undo_button.setEnabled(bool(h and h.done))
        self.redo_button.setEnabled(bool(h and h.undone))

    def _tool_changed(self, name: str) -> None:
        for view in self.window.views.values():
            view.left_handler = None if name == "Navigate" else self.on_view
            view.setCursor(QtCore.Qt.CursorShape.ArrowCursor if name == "Navigate" else QtCore.Qt.CursorShape.CrossCursor)

    def new_segment(self) -> None:
        """Add a segment (creating an empty segmentation on the image grid if there is none)."""
        vol = self.model.volume
        if vol is None:
            return
        lm = self.model.labelmap
        if lm is None:
            lm = LabelMap.empty_like(vol.geometry, LabelTable())
        value = max([lab.value for lab in lm.table] + [0]) + 1
        lm.table = lm.table.with_label(Label(value, f"Segment {value}", default_color(value)))
        if self.model.labelmap is lm:
            self.model.notify("segments")
        else:
            self.window.set_labelmap(lm)
        self.label.setCurrentIndex(self.label.findData(value))

    def delete_segment(self) -> None:
        lm, value = self.model.labelmap, self.label.currentData()
        if lm is None or value is None or self.history is None:
            return
        edit = editing.apply(lm, "delete", 0, lm.array == int(value))
        lm.table = type(lm.table)(tuple(lab for lab in lm.table if lab.value != int(value)))
        if edit is not None:
            self.history.push(edit)
            self.model.labels_changed(edit.box)
            self._changed(edit)
        self.model.notify("segments")

    # -- painting ------------------------------------------------------------------------------
    def locked(self) -> set[int]:
        return set(getattr(self.window.segments, "locked", set()))

    def on_view(self, view: str, display_ijk, phase: str) -> None:
        """Left button in a slice view with a paint/erase tool: one dab per event, one undo step per drag."""
        m = self.model
        value = self.label.currentData()
        if m.labelmap is None or value is None or self.history is None:
            return
        world = m.display.grid.index_to_world(display_ijk)
        ijk = m.labelmap.geometry.world_to_index(world)
        plane_axis = None
        if not self.sphere.isChecked():
            # the slice's normal, as an index axis of the label map's own grid
            normal = np.eye(3)[m.display.sliced_axis(view)]
            plane_axis = int(np.argmax(np.abs(m.labelmap.geometry.direction.T @ normal)))
        rng = (self.low.value(), self.high.value()) if self.threshold.isChecked() else None
        # dabs every half radius along the path since the last event: fast strokes leave no gaps
        last = self._last if phase not in ("click", "start") and self._last is not None else np.asarray(ijk)
        step_mm = max(self.radius.value() / 2, 0.25)
        dist_mm = float(np.linalg.norm((np.asarray(ijk) - last) * m.labelmap.geometry.spacing))
        n = max(1, int(np.ceil(dist_mm / step_mm)))
        changed = False
        for t in np.linspace(0, 1, n + 1)[1 if phase not in ("click", "start") else n:]:
            edit = editing.brush(m.labelmap, last + t * (np.asarray(ijk) - last), self.radius.value(), int(value),
                                 plane_axis, m.volume.array if rng and not m.volume.is_color else None, rng,
                                 self.locked(), erase=self.tool.currentText() == "Erase")
            if edit is not None:
                self._stroke.append(edit)
                changed = True
        self._last = np.asarray(ijk)
        if changed:
            m.labels_changed(self._stroke[-1].box if len(self._stroke) == 1 or phase == "click"
                             else editing.union_box([e.box for e in self._stroke[-n:]]))
        if phase in ("click", "finish"):
            self._last = None
            stroke = editing.merge(m.labelmap, self.tool.currentText().lower(), self._stroke)
            self._stroke = []
            if stroke is not None:
                self.history.push(stroke)
                self._changed(stroke)

    def run_operation(self, name: str, fn) -> None:
        """A whole-segment operation, computed in the worker on a copy (the views keep drawing the
        map meanwhile), then applied here as one undo step."""
        lm, value = self.model.labelmap, self.label.currentData()
        if lm is None or value is None or self.history is None:
            return
        work, amount, locked = lm.copy(), self.amount.value(), self.locked()
        self.window.tasks.start(f"{name}", lambda _p, _c, _part: fn(work, int(value), amount, locked),
                                lambda edit: self._apply(edit, lm), lambda exc: self.window._failed(name, exc))

    def _apply(self, edit, lm) -> None:
        if edit is None or lm is not self.model.labelmap:
            return
        lm.array[edit.box] = edit.after
        self.history.push(edit)
        self.model.labels_changed(edit.box)
        self._changed(edit)
        self.window.loaded.emit()

    def _changed(self, edit) -> None:
        values = set(np.unique(edit.before)) | set(np.unique(edit.after))
        values.discard(0)
        lm = self.model.labelmap
        missing = [v for v in values if lm.table.get(int(v)) is None and (lm.array[edit.box] == v).any()]
        if missing:  # an undo brought back a deleted segment's voxels: list it again
            lm.table = lm.table.completed_for(missing)
            self.model.notify("segments")
        if self.window.view3d.available:
            self.window.view3d.update_segments(sorted(int(v) for v in values), edit.box)
        self._sync_buttons()

    def undo(self) -> None:
        if self.history is not None and (e := self.history.undo()) is not None:
            self.model.labels_changed(e.box)
            self._changed(e)

    def redo(self) -> None:
        if self.history is not None and (e := self.history.redo()) is not None:
            self.model.labels_changed(e.box)
            self._changed(e)
