"""The Interactive tool's controls in the Edit panel: engine (unusable ones listed, disabled, with
the reason), prompt mode, Accept into the chosen segment (add, or replace it), Undo prompt, New
object. What the mouse does on the views is gui.interactive_tool."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.actions import editing
from core.planar import size_text
from gui.interactive_tool import MODES, InteractiveTool
from gui.shortcuts import key_for

HINT = ("Left click: part of the object · right click or Ctrl+click: not part of it · drag: the mode's "
        "box, lasso or scribble (Ctrl+drag: a negative lasso or scribble). Each prompt refines the object.")

_ACTION = {m: "tool_interactive" if m == "point" else f"interactive_{m}" for m in MODES}


class InteractivePanel(QtWidgets.QGroupBox):
    def __init__(self, session, shell, edit_panel, parent=None) -> None:
        super().__init__("Interactive", parent)
        self.session, self.shell, self.edit = session, shell, edit_panel
        self.tool = InteractiveTool(session, shell, self)
        self.engine = QtWidgets.QComboBox()
        self.engine.setToolTip("Which engine answers the prompts; engines not usable here are listed "
                               "greyed out, with the reason")
        self.engine.currentIndexChanged.connect(self._engine_chosen)
        # an unusable engine's entry carries its reason: long; the combo elides it instead of widening the panel
        self.engine.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.engine.setMinimumContentsLength(14)
        self.mode_buttons: dict[str, QtWidgets.QToolButton] = {}
        modes = QtWidgets.QHBoxLayout()
        group = QtWidgets.QButtonGroup(self)
        for mode in MODES:
            b = QtWidgets.QToolButton()
            b.setText(mode.capitalize())
            b.setCheckable(True)
            b.setToolTip(f"{mode.capitalize()} mode ({key_for(_ACTION[mode])})")
            b.clicked.connect(lambda _=False, m=mode: self.set_mode(m))
            group.addButton(b)
            modes.addWidget(b)
            self.mode_buttons[mode] = b
        self.mode_buttons["point"].setChecked(True)
        # keys in the tooltips, not the labels: three buttons in a row fit the side panel at any scale
        self.accept_button = QtWidgets.QPushButton("Accept")
        self.accept_button.setToolTip(f"Write the object into the chosen segment as one undo step (locked "
                                      f"segments keep their voxels); a new segment if there is none "
                                      f"({key_for('interactive_accept')})")
        self.accept_button.clicked.connect(self.accept)
        self.undo_button = QtWidgets.QPushButton("Undo prompt")
        self.undo_button.setToolTip("Take back the last prompt (Ctrl+Z while building an object)")
        self.undo_button.clicked.connect(self.tool.undo_prompt)
        self.new_button = QtWidgets.QPushButton("New object")
        self.new_button.setToolTip(f"Discard the object under construction and start another "
                                   f"({key_for('interactive_new')})")
        self.new_button.clicked.connect(self.tool.new_object)
        self.replace = QtWidgets.QCheckBox("Replace the segment")
        self.replace.setToolTip("The segment becomes the object (its voxels elsewhere are cleared); "
                                "unchecked, the object is added to it")
        buttons = QtWidgets.QHBoxLayout()
        for b in (self.accept_button, self.undo_button, self.new_button):
            buttons.addWidget(b)
        self.info = QtWidgets.QLabel()
        self.problem = QtWidgets.QLabel()
        self.problem.setStyleSheet("color: #e03131")
        hint = QtWidgets.QLabel(HINT)
        for label in (self.info, self.problem, hint):
            label.setWordWrap(True)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Engine", self.engine)
        form.addRow("Mode", modes)
        form.addRow(buttons)
        form.addRow(self.replace)
        form.addRow(self.info)
        form.addRow(self.problem)
        form.addRow(hint)
        self._actions: dict[str, QtGui.QAction] = {}
        self._filled = False
        self.tool.changed.connect(self._sync)
        self.tool.failed.connect(self._failed)
        self._sync()

    # -- wiring ---------------------------------------------------------------------------------
    def attach(self, views: dict) -> None:
        self.tool.attach(views)

    def set_active(self, on: bool) -> None:
        """The Edit panel's tool became (or stopped being) Interactive."""
        if on and not self._filled:
            self._fill_engines()
        self.tool.set_active(on)
        self.setVisible(on)

    def menu_items(self) -> list:
        """(action id, text, slot) for the window's Edit menu; the keys come from gui.shortcuts."""
        items = [(_ACTION[m], "&Interactive (point)" if m == "point" else f"Interactive: {m}",
                  lambda _=False, m=m: self.set_mode(m)) for m in MODES]
        return items + [("interactive_accept", "Accept the interactive object", self.accept),
                        ("interactive_new", "New interactive object", self.tool.new_object)]

    def bind_actions(self, actions: dict) -> None:
        """The window's actions for Accept and New object: their keys (Enter, Esc) work in the slice
        views only, and only while they apply, so a text or number field keeps its Enter and Esc."""
        self._actions = {k: actions[k] for k in ("interactive_accept", "interactive_new") if k in actions}
        for act in self._actions.values():
            act.setShortcutContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
            if isinstance(act.parent(), QtWidgets.QWidget):
                act.parent().removeAction(act)  # the window would make it window-wide again
            for view in self.tool.views.values():
                view.addAction(act)
        self._sync()

    def _fill_engines(self) -> None:
        from inference.interactive.engine import engines

        self._filled = True
        self.engine.blockSignals(True)
        self.engine.clear()
        first = usable = None  # the engine "auto" picks (make_engine), else any usable one
        for name, info in sorted(engines().items(), key=lambda kv: ("network", "classical").index(kv[0])
                                 if kv[0] in ("network", "classical") else 2):
            why = info.available()
            self.engine.addItem(info.title if why is None else f"{info.title} (not usable)", name)
            item = self.engine.model().item(self.engine.count() - 1)
            item.setToolTip(why or info.title)
            if why is not None:
                item.setEnabled(False)
                continue
            usable = self.engine.count() - 1 if usable is None else usable
            if first is None and info.auto:  # not an engine kept off "auto" while it is the weaker one
                first = self.engine.count() - 1
        first = usable if first is None else first
        self.engine.blockSignals(False)
        if first is None:
            self._failed("Interactive: no engine is usable on this machine" if self.engine.count()
                         else "Interactive: no engine is installed")
        else:
            self.engine.setCurrentIndex(first)
            self._engine_chosen(first)

    def _engine_chosen(self, index: int) -> None:
        name = self.engine.itemData(index)
        if name:
            self.tool.set_engine(name)

    # -- commands --------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Chosen by a button or a key: the Interactive tool becomes the Edit panel's tool, too."""
        self.tool.mode = mode
        self.mode_buttons[mode].setChecked(True)
        self.edit.tool.setCurrentText("Interactive")

    def accept(self) -> None:
        """Into the chosen segment; with no segmentation (or no segment) yet, a new segment first."""
        if not self.tool.has_object:
            return
        value = self.edit.label.currentData()
        if value is None:
            value = editing.new_segment(self.session)
            if value is None:
                return
            self.edit.label.setCurrentIndex(self.edit.label.findData(value))
        self.tool.accept(int(value), self.replace.isChecked())

    def _failed(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))
        self.shell.message(text, 15000)

    def _sync(self) -> None:
        t = self.tool
        has, prompting = t.has_object, len(t.prompts) > 0 or t.has_object
        self.accept_button.setEnabled(has)
        self.undo_button.setEnabled(len(t.prompts) > 0)
        self.new_button.setEnabled(prompting)
        for key, on in (("interactive_accept", has), ("interactive_new", prompting)):
            if key in self._actions:
                self._actions[key].setEnabled(on)
        if t.busy:
            self.problem.clear()
            self.problem.hide()
        counts = ", ".join(f"{n} {k if n != 1 else k[:-1]}" for k, n in t.prompts.counts().items() if n)
        parts = [counts or "No prompts yet: click on the object"]
        if has and self.session.volume is not None:
            parts.append(f"object {size_text(int(t.obj.mask.sum()), self.session.volume)}")
        if t.busy:
            parts.append("computing…")
        elif t.last_seconds is not None and has:
            parts.append(f"{t.last_seconds:.2f} s")
        self.info.setText(" · ".join(parts))
