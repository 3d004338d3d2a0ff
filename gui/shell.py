"""What the window's parts share besides the case session: the task runner, the status bar, error
dialogs, the settings and a signal that a piece of work has landed. Panels and controllers take the
session and this shell, never the main window."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6 import QtCore, QtWidgets

from core.errors import Cancelled
from gui.dialogs import show_error
from gui.workers import TaskBar


class Shell(QtCore.QObject):
    loaded = QtCore.Signal()  # a volume, segmentation, map or save finished (tests wait on it)

    def __init__(self, session, settings: QtCore.QSettings, parent: QtWidgets.QWidget,
                 status: Callable[[str, int], None]) -> None:
        super().__init__(parent)
        self.session, self.settings, self.widget, self._status = session, settings, parent, status
        self.tasks = TaskBar()

    def message(self, text: str, ms: int = 8000) -> None:
        self._status(text, ms)

    def run(self, title: str, fn: Callable, done: Callable, what: str, partial: Optional[Callable] = None) -> None:
        """``fn(progress, cancel, partial)`` in the worker; ``done(result)`` here, then ``loaded``."""
        self.tasks.start(title, fn, lambda result: (done(result), self.loaded.emit()),
                         lambda exc: self.failed(what, exc), partial)

    def failed(self, what: str, exc) -> None:
        self.session.clear_preview()  # a half-loaded first slice is not an image
        if isinstance(exc, Cancelled):
            self.message(f"{what}: cancelled", 8000)
            return
        show_error(self.widget, what, exc)

    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def last_dir(self) -> str:
        """Where file dialogs start: the folder of the most recently opened file."""
        recent = self.recent()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def reviewer(self) -> str:
        """The reviewer of record, asked once and kept in the settings."""
        name = str(self.settings.value("reviewer", "") or "")
        if not name:
            name, ok = QtWidgets.QInputDialog.getText(self.widget, "Reviewer", "Your name as the reviewer of record "
                                                      "(stored with each correction; change it in the settings file):")
            name = name.strip() if ok else ""
            if name:
                self.settings.setValue("reviewer", name)
        return name
