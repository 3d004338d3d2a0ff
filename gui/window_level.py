"""Window / level: the image's presets in a list and in the Window menu (keys 1-9, "Next preset"),
and the current centre / width."""
from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from core.viewer_model import ViewerModel


class WindowLevelBox(QtWidgets.QGroupBox):
    def __init__(self, model: ViewerModel, menu: QtWidgets.QMenu, parent=None) -> None:
        super().__init__("Window / level", parent)
        self.model, self.menu = model, menu
        self.presets = QtWidgets.QComboBox()
        self.presets.activated.connect(self.apply_preset)
        self.text = QtWidgets.QLabel()
        form = QtWidgets.QFormLayout(self)
        form.addRow("Preset", self.presets)
        form.addRow("C / W", self.text)
        self._fixed = list(menu.actions())  # actions of the menu that are not presets
        self._listed: list = []  # the image's presets as listed (Auto's percentiles cost ~18 ms on a 512² x 300 CT)
        model.subscribe("image", self.fill)
        model.subscribe("window", self._sync)

    def fill(self) -> None:
        self.presets.clear()
        for a in self.menu.actions():
            if a not in self._fixed:
                self.menu.removeAction(a)
        self._listed = self.model.presets()
        # a dragged or typed window is no preset: the list then says "Custom" (nothing, with no image open)
        self.presets.setPlaceholderText("Custom" if self.model.volume is not None else "")
        for n, p in enumerate(self._listed):
            self.presets.addItem(f"{p.name}  ({p.center:g} / {p.width:g})")
            act = QtGui.QAction(f"{p.name}  (C {p.center:g}, W {p.width:g})", self.menu)
            if n < 9:
                act.setShortcut(QtGui.QKeySequence(str(n + 1)))
            act.triggered.connect(lambda _=False, n=n: self.apply_preset(n))
            self.menu.addAction(act)
        self._sync()

    def apply_preset(self, n: int) -> None:
        presets = self._listed
        if 0 <= n < len(presets):
            self.model.set_window(presets[n])
            self.presets.setCurrentIndex(n)

    def next_preset(self) -> None:
        n = len(self._listed)
        if n:
            self.apply_preset((self.presets.currentIndex() + 1) % n)

    def _sync(self) -> None:
        w = self.model.window
        self.text.setText(f"{w.center:.0f} / {w.width:.0f}")
        # on every window change (a right-drag sends one a mouse move): the listed presets, not new ones
        same = [n for n, p in enumerate(self._listed) if (p.center, p.width) == (w.center, w.width)]
        if not same:
            self.presets.setCurrentIndex(-1)
        elif self.presets.currentIndex() not in same:  # the list names the window on screen
            self.presets.setCurrentIndex(same[-1] if w.name != "Auto" else same[0])
