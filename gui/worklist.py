"""Worklist: the cases in the corrections store with their review state, who they are assigned to
and who has them open; double-click opens one (the de-identified image and its latest corrected
mask) under the case's lock (store.team), held - with a heartbeat - until another image replaces
it; a case someone else holds is not opened, and the panel says by whom. "Assigned to me" lists
only the reviewer's cases. The store is read in the task runner's worker, never on the UI thread;
the panel knows the case session and the task runner, not the window, and hands an opened case on
through ``case_opened``."""
from __future__ import annotations

import threading

from PySide6 import QtCore, QtWidgets

COLUMNS = ("State", "Model", "Updated", "Uncertainty", "Split", "Assigned to", "Locked by", "Case")
_RETRY_MS = 500  # how soon a refresh that found the runner busy tries again


class WorklistPanel(QtWidgets.QWidget):
    case_opened = QtCore.Signal(object, object, object, str)  # image, ai, corrected, case id
    refreshed = QtCore.Signal()  # the table shows the store as it was just read
    failed = QtCore.Signal(str, object)  # what could not be done, the exception

    def __init__(self, session, tasks, parent=None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.session = session
        self.root = None  # None: the default store ($DELINEATE_STORE: a folder or a postgresql:// URL)
        self.reviewer = _reviewer  # who opens cases: the settings' reviewer of record, else the login
        self.held = None  # the lock of the case open for editing (store.team.HeldLock)
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
        self.mine = QtWidgets.QCheckBox("Assigned to me")
        self.mine.setToolTip("Only the cases assigned to you (the reviewer of record)")
        self.mine.toggled.connect(lambda _on: self.refresh())
        self.by_uncertainty = QtWidgets.QCheckBox("Most uncertain first")  # review where the model doubts
        self.by_uncertainty.toggled.connect(lambda _on: self.refresh())
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.mine)
        lay.addWidget(self.by_uncertainty)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.status)
        lay.addWidget(refresh)
        self._pending = False  # a refresh is waiting for the runner or running
        self._again = False  # asked for again meanwhile (the store or root may have changed since it began)
        self._retry = QtCore.QTimer(self, singleShot=True, interval=_RETRY_MS)
        self._retry.timeout.connect(self._start_refresh)
        if session is not None:
            from app.session import ReviewSaved

            from app.session import ImageOpened

            subs = [session.subscribe(ReviewSaved, lambda _e: self.refresh()),
                    session.subscribe(ImageOpened, self._image_opened)]
            self.destroyed.connect(lambda *_: [sub.cancel() for sub in subs])
        self.destroyed.connect(lambda *_: self.release())
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

        root, mine = self.root, self.reviewer() if self.mine.isChecked() else None
        # cancel is not heeded: the query is short, and a refresh superseded by the user's next
        # task still delivers its rows
        self.tasks.start("Reading the worklist", lambda p, _c, _part: list_cases(root, progress=p, assignee=mine),
                         self._listed, self._list_failed)

    def _listed(self, cases: list) -> None:
        if self._again:  # what was read may be stale already: read again, show only the latest
            self._start_refresh()
            return
        self._pending = False
        self.cases = list(cases)
        if self.by_uncertainty.isChecked():  # cases without a measured uncertainty last
            self.cases.sort(key=lambda c: -c.uncertainty if c.uncertainty is not None else float("inf"))
        self.table.setRowCount(len(self.cases))
        for r, c in enumerate(self.cases):
            cells = (c.state.replace("_", " ") + (f": {c.reason}" if c.reason else ""),
                     f"{c.model_id or ''} {c.model_version or ''}".strip(), c.updated.replace("T", " ")[:16],
                     "" if c.uncertainty is None else f"{c.uncertainty:.3f}", c.split, c.assignee, c.locked_by, c.id)
            for col, text in enumerate(cells):
                self.table.setItem(r, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        where = " assigned to you" if self.mine.isChecked() else " in the store"
        self.status.setText(f"{len(self.cases)} case{'s' * (len(self.cases) != 1)}{where}" if self.cases else
                            "No case assigned to you" if self.mine.isChecked() else "No saved corrections yet")
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
        """Open the row's case for editing: its lock is taken first (the lock of the case open
        before is let go), so nobody else edits it meanwhile."""
        if not 0 <= row < len(self.cases):
            return
        from app.actions.store_cases import release_case, take_case

        case_id, root, reviewer, previous = self.cases[row].id, self.root, self.reviewer(), self.held
        self.held = None

        def work(p, c, _part):
            if previous is not None:
                release_case(previous)
            return take_case(case_id, reviewer, root, p, c)

        self.status.setText(f"Opening case {case_id}…")
        self.tasks.start(f"Opening case {case_id}", work, lambda edited: self._opened(case_id, edited),
                         lambda exc: self._open_failed(case_id, exc))

    def _opened(self, case_id: str, edited) -> None:
        self.held = edited.lock
        self.status.setText(f"Opened case {case_id} (locked for you until another image is opened)")
        self.case_opened.emit(edited.image, edited.ai, edited.corrected, case_id)

    def _open_failed(self, case_id: str, exc) -> None:
        from core.errors import Cancelled
        from store.team import CaseLocked

        if isinstance(exc, Cancelled):  # the user's own Cancel: nothing to report
            self.status.setText(f"Opening case {case_id} cancelled")
            return
        if isinstance(exc, CaseLocked):
            self.status.setText(f"Case {case_id} is not opened: {exc.info.describe()}")
        else:
            self.status.setText(f"Cannot open case {case_id}: {exc}")
        self.failed.emit(f"case {case_id}", exc)

    def _image_opened(self, event) -> None:
        """Another image replaced the store case: its lock is let go."""
        held = self.held
        if held is not None and not event.preview and getattr(self.session, "store_case", None) != held.case_id:
            self.release()

    def release(self) -> None:
        """Let the open case's lock go, off the UI thread (a database round trip)."""
        held, self.held = self.held, None
        if held is not None:
            threading.Thread(target=held.release, name="release case lock", daemon=True).start()


def apply_store_setting(settings) -> str:
    """The settings' ``store`` (a folder or a postgresql://...?files=... URL) becomes the default
    store of this process, unless $DELINEATE_STORE names one (the environment wins); the store in use."""
    import os

    from store.location import redacted

    value = str(settings.value("store", "") or "").strip()
    if value and not os.environ.get("DELINEATE_STORE", "").strip():
        os.environ["DELINEATE_STORE"] = value
    return redacted(os.environ.get("DELINEATE_STORE", ""))


def _reviewer() -> str:
    name = str(QtCore.QSettings("Delineate", "Delineate").value("reviewer", "") or "")
    if not name:
        from store.team import this_login

        name = this_login()
    return name
