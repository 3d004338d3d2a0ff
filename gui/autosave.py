"""Crash recovery in the window: the case in progress is written to the recovery file (in a
thread) every 30 s when it was edited, and on close; at the next start it is offered back."""
from __future__ import annotations

import threading

from PySide6 import QtCore, QtWidgets

from app.session import CaseSession
from core.errors import DelineateError
from gui.dialogs import show_error
from gui.shell import Shell

AUTOSAVE_MS = 30_000


class Autosave(QtCore.QObject):
    def __init__(self, session: CaseSession, shell: Shell, opener) -> None:
        super().__init__(shell)
        self.session, self.shell, self.opener = session, shell, opener
        self._saved_edit = None
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    def autosave(self, wait: bool = False) -> bool:
        """Write the case to the recovery file if it was edited since the last autosave. Returns
        whether a write was started."""
        from store import recovery

        s = self.session
        last = s.history.done[-1] if s.history is not None and s.history.done else None
        # saved to the store (or undone back to it): nothing to recover
        if last is None or last is self._saved_edit or not s.source or not s.has_unsaved_edits():
            return False
        self._saved_edit = last
        thread = threading.Thread(target=recovery.save, args=(s.volume, s.labelmap.copy(), s.source), daemon=True)
        thread.start()
        if wait:
            thread.join()
        return True

    def offer(self, ask: bool = True) -> bool:
        """If a recovery file is pending, offer to reopen its image with the unsaved edits."""
        from store import recovery

        meta = recovery.pending()
        if meta is None:
            return False
        if ask:
            answer = QtWidgets.QMessageBox.question(
                self.shell.widget, "Restore unsaved edits?",
                f"Delineate was closed with unsaved edits (autosaved {meta['saved']}) on:\n{meta['source']}\n\n"
                "Restore them?")
            if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                recovery.clear()
                return False

        def apply() -> None:
            self.shell.loaded.disconnect(apply)
            restored = recovery.restore(self.session.volume)
            if restored is None:
                show_error(self.shell.widget, meta["source"],
                           DelineateError("the image changed since the autosave; not restored"))
                return
            self.opener.set_labelmap(restored, unsaved=True)  # still not in the store: asked about on leaving
            self.shell.message(f"Restored the edits autosaved {meta['saved']}", 15000)

        self.shell.loaded.connect(apply)
        self.opener.open_path(meta["source"])
        return True
