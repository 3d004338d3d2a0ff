"""Editing tools on the slice views: navigate, paint, erase (round brush in mm, on the slice or as a
3D sphere, optionally limited to an intensity range; its outline follows the mouse), level tracing
(click: the region inside the iso-intensity outline, previewed under the mouse), scissors (drag a
shape: erase or fill inside or outside it, on the slice or through the volume), interactive
segmentation from prompts (gui.interactive_panel), segment operations (holes in 3D or on the slice,
islands, margin, smoothing, hollow, interpolation, grow from seeds, logical operations between
segments), undo/redo. A drag is one stroke and one undo step, an operation one undo step, and the
status bar says what each changed. The panel only reads its controls: the edits are
app.actions.editing on the case session, the voxel operations core.editing and
core.editor_effects (Qt-free, tested); gui.shape_tools draws on the views."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.actions import editing
from app.session import CaseSession, HistoryChanged, ImageOpened, LabelsEdited
from core import editor_effects as fx
from core import planar
from core.errors import DelineateError
from gui.interactive_panel import InteractivePanel
from gui.shape_tools import EditPreview, ShapeTools
from gui.shortcuts import key_for

TOOLS = ("Navigate", "Paint", "Erase", "Level trace", "Scissors", "Interactive")
TIPS = {"Interpolate slices": "Fills the slices between slices you drew on (along the image's slice axis), "
                              "by shape-based interpolation of their outlines",
        "Fill holes": "Fills what the segment encloses in 3D (a contour on one slice encloses nothing in 3D)",
        "Fill holes (slice)": "Fills what the segment encloses on the slice through the crosshair, in the view "
                              "the mouse was last over (background only)",
        "Grow by mm": "Margin: background within this many mm of the segment joins it (exact mm distances)",
        "Shrink by mm": "Margin: the segment loses its voxels within this many mm of its outside",
        "Hollow (mm)": "Keeps a shell this many mm thick along the segment's surface, inside it",
        "Grow from seeds": "Splits the background around the segments' strokes among them: each voxel goes to "
                           "the segment reached crossing the least intensity change (at least two segments, "
                           "e.g. the object and a 'Background'; locked ones stay as they are). It reaches only "
                           f"the strokes' bounding box plus {fx.GROW_PAD_MM:g} mm: stroke out to where the object "
                           "ends"}
EXTRA_OPERATIONS = ("Fill holes (slice)", "Grow from seeds")
HINTS = {"Level trace": "Click: fill the region inside the outline at the clicked intensity (shown under the "
                        "mouse) on this slice",
         "Scissors": "Drag a shape around what to cut; it applies when the button is released"}


class EditPanel(QtWidgets.QWidget):
    tool_changed = QtCore.Signal(str)  # the window points the slice views' left button at on_view

    def __init__(self, session: CaseSession, shell, parent=None) -> None:
        super().__init__(parent)
        self.session, self.model, self.shell = session, session.viewer, shell
        self.tool = QtWidgets.QComboBox()
        self.tool.addItems(TOOLS)
        self.tool.currentTextChanged.connect(self.tool_changed.emit)
        self.shapes = ShapeTools(self)
        self.previewer = EditPreview(session)
        self._pending = None  # (name, edit, value, where, label map) shown as a preview, not yet applied
        self.last_view = "axial"  # the view the mouse was last over: slice operations act on its slice
        self.label = QtWidgets.QComboBox()
        self.radius = QtWidgets.QDoubleSpinBox()
        self.radius.setRange(0.5, 50.0)
        self.radius.setValue(3.0)
        self.radius.setSuffix(" mm")
        self.radius.setToolTip("Brush radius ([ and ] change it); its outline follows the mouse on the views")
        self.radius.valueChanged.connect(lambda _v: self.shapes.brush_resized())
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
        form.addRow(self.sphere)  # spanning rows keep the form narrow enough for a 2x HiDPI screen
        form.addRow(self.threshold)
        form.addRow("Range", rng)
        self.scissors_mode = QtWidgets.QComboBox()
        self.scissors_mode.addItems(fx.SCISSORS)
        self.scissors_mode.setToolTip("Erase removes the chosen segment only; fill paints it")
        self.through = QtWidgets.QCheckBox("Through the volume")
        self.through.setToolTip("Cut every slice under the shape; unchecked, only the shown slice")
        self.through.setChecked(True)
        form.addRow("Scissors", self.scissors_mode)
        form.addRow("", self.through)
        self.hint = QtWidgets.QLabel()
        self.hint.setWordWrap(True)
        form.addRow(self.hint)
        seg_row = QtWidgets.QHBoxLayout()
        seg_row.addWidget(self.new)
        seg_row.addWidget(self.delete)
        form.addRow(seg_row)
        form.addRow(row)
        self.amount = QtWidgets.QDoubleSpinBox()
        self.amount.setRange(0.1, 100.0)
        self.amount.setValue(2.0)
        self._amount_label = QtWidgets.QLabel()
        form.addRow(self._amount_label, self.amount)
        grid = QtWidgets.QGridLayout()
        self.op_buttons = {}
        for n, name in enumerate(list(editing.OPERATIONS) + list(EXTRA_OPERATIONS)):
            b = QtWidgets.QPushButton(name)
            b.clicked.connect(lambda _=False, name=name: self.run_operation(name))
            b.setToolTip(TIPS.get(name, ""))
            grid.addWidget(b, n // 2, n % 2)
            self.op_buttons[name] = b
        form.addRow(grid)
        self.preview = QtWidgets.QCheckBox("Preview first")
        self.preview.setToolTip("Operations show what they would change (green and white stripes: painted, red and black "
                                "stripes: cleared) "
                                "until Apply; Discard drops it")
        self.apply_button = QtWidgets.QPushButton("Apply")
        self.discard_button = QtWidgets.QPushButton("Discard")
        self.apply_button.clicked.connect(self.apply_preview)
        self.discard_button.clicked.connect(self.discard_preview)
        pending = QtWidgets.QHBoxLayout()
        for w in (self.preview, self.apply_button, self.discard_button):
            pending.addWidget(w)
        form.addRow(pending)
        self._sync_pending()
        self.logic_op = QtWidgets.QComboBox()
        self.logic_op.addItems(fx.LOGICAL)
        self.logic_op.setToolTip("With the chosen segment and the one here: union takes the other's voxels; "
                                 "intersect keeps, subtract removes what lies inside the other's region (its "
                                 "voxels with holes filled); copy replaces the segment by the other's voxels; "
                                 "clear empties the segment")
        self.logic_other = QtWidgets.QComboBox()
        self.logic_apply = QtWidgets.QPushButton("Apply")
        self.logic_apply.clicked.connect(self.run_logical)
        logic = QtWidgets.QHBoxLayout()
        for w in (QtWidgets.QLabel("Logical"), self.logic_op, self.logic_other, self.logic_apply):
            logic.addWidget(w)
        form.addRow(logic)
        self.interactive = InteractivePanel(session, shell, self)  # shown while its tool is chosen
        self.interactive.setVisible(False)
        form.insertRow(2, self.interactive)  # under the segment it accepts into
        self.tool.currentTextChanged.connect(lambda name: self._tool_rows(form, rng, name))
        self._tool_rows(form, rng, self.tool.currentText())
        self._stroke: Optional[editing.BrushStroke] = None
        self.model.subscribe("segments", self._segments_changed)
        session.subscribe(ImageOpened, lambda _e: self._sync_buttons(HistoryChanged(False, False)))
        session.subscribe(ImageOpened, lambda _e: self.discard_preview())
        session.subscribe(ImageOpened, lambda _e: self._sync_units())
        session.subscribe(HistoryChanged, self._sync_buttons)
        session.subscribe(LabelsEdited, self._undone)  # whoever asked (button, menu, key), said here
        self._sync_buttons(HistoryChanged(False, False))
        self._sync_units()

    def _sync_units(self) -> None:
        """Lengths and island sizes in the image's units: mm and ml, mm² on an image plane, px where
        the file gives no pixel size (core.planar.edit_units)."""
        length, size = planar.edit_units(self.session.volume)
        self.radius.setSuffix(f" {length}")
        self._amount_label.setText(f"Amount ({length} / {size})")
        self.amount.setToolTip(f"{length} for grow/shrink/smooth/hollow, {size} for removing islands")
        for name, b in self.op_buttons.items():
            b.setText(f"Remove islands < {size}" if name == "Remove islands" else name.replace("mm", length))
            b.setToolTip(TIPS.get(name, "").replace(" mm", f" {length}"))

    def _tool_rows(self, form: QtWidgets.QFormLayout, rng: QtWidgets.QLayout, name: str) -> None:
        """Each tool's controls show while it is chosen (the brush's while painting or erasing)."""
        brush = name not in ("Interactive", "Level trace", "Scissors")
        for row in (self.radius, self.sphere, self.threshold, rng):
            form.setRowVisible(row, brush)
        for row in (self.scissors_mode, self.through):
            form.setRowVisible(row, name == "Scissors")
        self.hint.setText(HINTS.get(name, ""))
        form.setRowVisible(self.hint, name in HINTS)
        self.shapes.clear()
        self.interactive.set_active(name == "Interactive")

    def attach(self, views: dict) -> None:
        """Draw the brush outline, scissors shape, level-tracing outline and previews on these views."""
        self.shapes.attach(views)
        self.previewer.attach(views)

    def menu_items(self) -> list:
        """(action id, text, slot) for the window's Edit menu; the keys come from gui.shortcuts."""
        return [("tool_level_trace", "&Level trace", lambda: self.tool.setCurrentText("Level trace")),
                ("tool_scissors", "S&cissors", lambda: self.tool.setCurrentText("Scissors")),
                ("brush_smaller", "Brush smaller", lambda: self.radius.setValue(self.radius.value() / 1.25)),
                ("brush_bigger", "Brush bigger", lambda: self.radius.setValue(self.radius.value() * 1.25))]

    @property
    def history(self):
        return self.session.history

    def _segments_changed(self) -> None:
        lm = self.model.labelmap
        keep = self.label.currentData()
        keep_other = self.logic_other.currentData()
        for box, kept in ((self.label, keep), (self.logic_other, keep_other)):
            box.blockSignals(True)
            box.clear()
            for lab in (lm.table if lm is not None else []):
                box.addItem(f"{lab.value} {lab.name}", lab.value)
            if kept is not None and box.findData(kept) >= 0:
                box.setCurrentIndex(box.findData(kept))
            box.blockSignals(False)

    def _sync_buttons(self, event: HistoryChanged) -> None:
        self.undo_button.setEnabled(event.can_undo)
        self.redo_button.setEnabled(event.can_redo)

    def new_segment(self) -> None:
        """Add a segment (creating an empty segmentation on the image grid if there is none)."""
        value = editing.new_segment(self.session)
        if value is not None:
            self.label.setCurrentIndex(self.label.findData(value))

    def delete_segment(self) -> None:
        value = self.label.currentData()
        if value is not None and not self._missing_segment("Delete segment"):
            self._said("Delete segment", editing.delete_segment(self.session, int(value)), int(value))

    def _undone(self, event: LabelsEdited) -> None:
        if event.how != "edit":
            edit = event.edit.inverse() if event.how == "undo" else event.edit
            self.shell.message(editing.report(f"{event.how.capitalize()} {edit.name}", edit, self.session.labelmap),
                               15000)

    def _missing_segment(self, name: str) -> bool:
        """Whether there is no segment to edit; if so the status bar says how to get one (a click
        that does nothing and says nothing looks like a broken tool)."""
        s = self.session
        if s.labelmap is not None and s.history is not None and self.label.currentData() is not None:
            return False
        new = f"New segment, {key_for('new_segment')}"
        self.shell.message(f"{name}: no segmentation yet — add a segment ({new}) or run a model "
                           f"({key_for('run_default')})" if s.labelmap is None
                           else f"{name}: no segment chosen — add one ({new}) or choose one under Segment", 15000)
        return True

    def undo(self) -> None:
        """Ctrl+Z: while an interactive object is being built, its last prompt; else the last edit."""
        if not (self.tool.currentText() == "Interactive" and self.interactive.tool.undo_prompt()):
            self.session.undo()

    def redo(self) -> None:
        self.session.redo()

    def on_view(self, view: str, display_ijk, phase: str) -> None:
        """Left button in a slice view with a paint/erase tool: one dab per event, one undo step per drag."""
        tool = self.tool.currentText()
        self.last_view = view
        if tool == "Interactive":
            self.interactive.tool.on_view(view, display_ijk, phase)
            return
        s, value = self.session, self.label.currentData()
        if s.labelmap is None or value is None or s.history is None:
            if phase in ("click", "start") and tool != "Navigate":
                self._missing_segment(tool)
            return
        if tool == "Level trace":
            if phase == "click":
                self._said("Level trace", editing.level_trace(s, view, display_ijk, int(value)), int(value))
            return
        if tool == "Scissors":
            shape = self.shapes.scissors_event(view, display_ijk, phase)
            if shape is not None:
                mode = self.scissors_mode.currentText()
                edit = editing.scissors(s, view, shape, mode, int(value), self.through.isChecked())
                where = " through the volume" if self.through.isChecked() else " on the slice"
                self._said(f"Scissors ({mode})", edit, int(value), where)
            return
        if phase in ("click", "start") or self._stroke is None:
            self._stroke = editing.BrushStroke(
                s, int(value), self.radius.value(), erase=self.tool.currentText() == "Erase",
                plane_axis=None if self.sphere.isChecked() else editing.plane_axis_for(s, view),
                intensity_range=(self.low.value(), self.high.value()) if self.threshold.isChecked() else None)
        self._stroke.dab(s.labelmap.geometry.world_to_index(s.viewer.display.grid.index_to_world(display_ijk)))
        if phase in ("click", "finish"):
            self._said(tool, self._stroke.finish(), int(value))
            self._stroke = None

    def run_operation(self, name: str) -> None:
        """A whole-segment operation, computed in the worker on a copy (the views keep drawing the
        map meanwhile), then applied as one undo step."""
        s, value = self.session, self.label.currentData()
        if self._missing_segment(name):
            return
        lm, work, amount, locked = s.labelmap, s.labelmap.copy(), self.amount.value(), set(s.locked)
        where = ""
        if name == "Fill holes (slice)":
            axis, index = editing.slice_through(s, self.last_view, s.viewer.cursor)
            where = f" ({self.last_view} view, slice {index + 1} of the image's {'xyz'[axis]} axis)"
            fn = lambda: editing.fill_holes_slice(work, int(value), axis, index, locked)  # noqa: E731
        elif name == "Grow from seeds":
            image = s.volume.array
            fn = lambda: editing.grow_from_seeds(work, image, locked)  # noqa: E731
        else:
            if name == "Remove islands":
                amount = planar.island_ml(s.volume, amount)
            fn = lambda: editing.operation(work, name, int(value), amount, locked)  # noqa: E731
        self._run(name, fn, lm, int(value), where)

    def run_logical(self) -> None:
        """A logical operation between the chosen segment and the other one, as one undo step."""
        s, value, other = self.session, self.label.currentData(), self.logic_other.currentData()
        if self._missing_segment("Logical"):
            return
        op = self.logic_op.currentText()
        lm, work, locked = s.labelmap, s.labelmap.copy(), set(s.locked)
        other_name = "" if op == "clear" else f" with {self.logic_other.currentText()}"
        self._run(f"{op.capitalize()}{other_name}", lambda: editing.logical(work, op, int(value), other, locked),
                  lm, int(value))

    def _run(self, name: str, fn, lm, value: int, where: str = "") -> None:
        """``fn`` in the worker on a copy; its Edit applied here (unless another map was opened
        meanwhile) and said in the status bar."""
        s = self.session

        def work(_progress, _cancel, _partial):
            try:
                return fn()
            except DelineateError as exc:  # a precondition (two segments to grow from...): said, not a dialog
                return exc

        def done(edit) -> None:
            if isinstance(edit, DelineateError):
                self.shell.message(f"{name}: {edit}", 15000)
            elif lm is not s.labelmap:
                return
            elif self.preview.isChecked() and edit is not None:
                self._pending = (name, edit, value, where, lm)
                self.previewer.show(edit)
                self._sync_pending()
                self.shell.message("Preview — " + editing.report(name, edit, lm, value, where)
                                   + self._reach(name) + ": Apply or Discard", 60000)
            else:
                s.apply(edit, write=True)
                self._said(name, edit, value, where)

        self.shell.run(name, work, done, name)

    def apply_preview(self) -> None:
        """Write the previewed operation (one undo step), unless the segmentation changed since."""
        if self._pending is None:
            return
        name, edit, value, where, lm = self._pending
        self.discard_preview()
        s = self.session
        if lm is not s.labelmap or not np.array_equal(lm.array[edit.box], edit.before):
            self.shell.message(f"{name}: the segmentation changed since the preview; run it again", 15000)
            return
        s.apply(edit, write=True)
        self._said(name, edit, value, where)

    def discard_preview(self) -> None:
        self._pending = None
        self.previewer.show(None)
        self._sync_pending()

    def _sync_pending(self) -> None:
        for b in (self.apply_button, self.discard_button):
            b.setEnabled(self._pending is not None)

    def _said(self, name: str, edit, value: Optional[int], where: str = "") -> None:
        self.shell.message(editing.report(name, edit, self.session.labelmap, value, where) + self._reach(name),
                           15000)

    def _reach(self, name: str) -> str:
        """Grow from seeds stops short of the image (the strokes' box plus a margin): said, as a
        result cut off at a straight edge otherwise looks like a failure."""
        if name != "Grow from seeds":
            return ""
        length, _size = planar.edit_units(self.session.volume)
        return (f" — only inside the strokes' bounding box plus {fx.GROW_PAD_MM:g} {length}; "
                "stroke farther out to grow farther")
