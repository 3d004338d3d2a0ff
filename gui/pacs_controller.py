"""The window's PACS menu items: File > Open from PACS (the study browser, made once and kept, so
its node and results stay between uses) and File > Send to PACS."""
from __future__ import annotations

from typing import Optional

from PySide6 import QtCore, QtWidgets

from core.errors import DelineateError


class PacsController(QtCore.QObject):
    sent = QtCore.Signal(int)  # a send finished: how many files the node stored

    def __init__(self, session, shell, opener) -> None:
        super().__init__(shell)
        self.session, self.shell, self.opener = session, shell, opener
        self.browser = None
        self.send_dialog_shown: Optional[QtWidgets.QDialog] = None  # kept for tests while shown
        self.last_sent: Optional[int] = None
        shell.widget.installEventFilter(self)  # the browser's workers wind down when the window closes

    def open_browser(self) -> None:
        from gui.pacs_browser import PacsBrowser

        if self.browser is None:
            self.browser = PacsBrowser(self.session, self.shell, self.opener, self.shell.widget)
        self.browser.show()
        self.browser.raise_()
        self.browser.activateWindow()

    def send_dialog(self) -> None:
        from gui.pacs_node_dialog import configured_nodes
        from gui.pacs_send import SendDialog

        if self.session.volume is None or self.session.labelmap is None:
            self.shell.message("Nothing to send: open an image and segment it first")
            return
        try:
            nodes = configured_nodes()
        except DelineateError as exc:
            self.shell.failed("PACS settings", exc)
            return
        if not nodes:
            self.shell.message("No PACS node yet: add one in File → Open from PACS…", 10000)
            return
        self.send_dialog_shown = dlg = SendDialog(nodes, self.shell.widget)
        accepted = dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted
        self.send_dialog_shown = None
        if accepted:
            v = dlg.values()
            self.send(nodes[v["name"]], v["fmt"], v["deidentify"])

    def send(self, node, fmt: str, deidentify: bool) -> None:
        """Export what is on screen (a copy: editing may go on) and send it, in the task runner."""
        from app.actions import pacs as actions
        from app.actions.exporting import case_from_session
        from gui.pacs_send import send_failed

        case = case_from_session(self.session, str(self.shell.settings.value("reviewer", "") or ""))
        what = f"Sending the {fmt.upper() if fmt != 'report' else 'report'} to {node}"
        self.last_sent = None

        def done(n: int) -> None:
            self.last_sent = n
            self.shell.message(f"Sent {n} file{'s' if n != 1 else ''} to {node}", 15000)
            self.sent.emit(n)

        self.shell.tasks.start(what, lambda p, c, _part: actions.send_export(
            node, case, fmt, deidentify=deidentify, progress=p, cancel=c), done,
            lambda exc: send_failed(self.shell.widget, what, exc))

    def eventFilter(self, obj, ev) -> bool:
        if obj is self.shell.widget and ev.type() == QtCore.QEvent.Type.Close and self.browser is not None:
            self.browser.wait()
        return False
