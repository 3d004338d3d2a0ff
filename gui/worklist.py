"""Worklist: the cases in the corrections store with their review state; double-click opens one
(the de-identified image and its latest corrected mask). The store is read in the task runner's
worker, never on the UI thread; the panel knows the case session and the task runner, not the
window, and hands an opened case on through ``case_opened``."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

COLUMNS = ("State", "Model", "Updated", "Uncertainty", "Split", "Case")
_RETRY_MS = 500  # how soon a refresh that found the runner busy tries again


class WorklistPanel(QtWidgets.QWidget):
    case_opened = QtCore.Signal(object, object, object, str)  # image, ai, corrected, case id
    refreshed = QtCore.Signal()  # the table shows the store as it was just read
    failed = QtCore.Signal(str, object)  # what could not be done, the exception

    def __init__(self, session, tasks, parent=None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.root = None  # None: the default store
        self.cases: list = []
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.open_row(r))
        self.status = QtWidgets.QLabel("Reading the store…")
        self.status.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.status)
        lay.addWidget(refresh)
        self._pending = False  # a refresh is waiting for the runner or running
        self._again = False  # asked for again meanwhile (the store or root may have changed since it began)
        self._retry = QtCore.QTimer(self, singleShot=True, interval=_RETRY_MS)
        self._retry.timeout.connect(self._start_refresh)
        if session is not None:
            from app.session import ReviewSaved

            sub = session.subscribe(ReviewSaved, lambda _e: self.refresh())
            self.destroyed.connect(lambda *_: sub.cancel())
        self.refresh()

    # -- listing -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the store in the worker and show it. Never supersedes work the runner is doing (an
        image loading, a model running): it waits until the runner is free."""
        if self._pending:
            self._again = True
            return
        self._pending = True
        self._start_refresh()

    def _start_refresh(self) -> None:
        self._again = False
        if self.tasks.busy:
            self._retry.start()
            return
        from app.actions.store_cases import list_cases

        root = self.root
        # cancel is not heeded: the query is short, and a refresh superseded by the user's next
        # task still delivers its rows
        self.tasks.start("Reading the worklist", lambda p, _c, _part: list_cases(root, progress=p),
                         self._listed, self._list_failed)

    def _listed(self, cases: list) -> None:
        if self._again:  # what was read may be stale already: read again, show only the latest
            self._start_refresh()
            return
        self._pending = False
        self.cases = list(cases)
        self.table.setRowCount(len(self.cases))
        for r, c in enumerate(self.cases):
            cells = (c.state.replace("_", " ") + (f": {c.reason}" if c.reason else ""),
                     f"{c.model_id or ''} {c.model_version or ''}".strip(), c.updated.replace("T", " ")[:16],
                     "" if c.uncertainty is None else f"{c.uncertainty:.3f}", c.split, c.id)
            for col, text in enumerate(cells):
                self.table.setItem(r, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.status.setText(f"{len(self.cases)} case{'s' * (len(self.cases) != 1)} in the store"
                            if self.cases else "No saved corrections yet")
        self.refreshed.emit()

    def _list_failed(self, exc) -> None:
        if self._again:
            self._start_refresh()
            return
        self._pending = False
        self.status.setText(f"Cannot read the store: {exc}")
        self.failed.emit("corrections store", exc)

    # -- opening -------------------------------------------------------------------------------
    def open_row(self, row: int) -> None:
        if not 0 <= row < len(self.cases):
            return
        from app.actions.store_cases import open_case

        case_id, root = self.cases[row].id, self.root
        self.status.setText(f"Opening case {case_id}…")
        self.tasks.start(f"Opening case {case_id}", lambda p, c, _part: open_case(case_id, root, p, c),
                         lambda loaded: self._opened(case_id, loaded),
                         lambda exc: self._open_failed(case_id, exc))

    def _opened(self, case_id: str, loaded) -> None:
        image, ai, corrected = loaded
        self.status.setText(f"Opened case {case_id}")
        self.case_opened.emit(image, ai, corrected, case_id)

    def _open_failed(self, case_id: str, exc) -> None:
        from core.errors import Cancelled

        if isinstance(exc, Cancelled):  # the user's own Cancel: nothing to report
            self.status.setText(f"Opening case {case_id} cancelled")
            return
        self.status.setText(f"Cannot open case {case_id}: {exc}")
        self.failed.emit(f"case {case_id}", exc)
