"""Worklist: the cases in the corrections store - study description, study year, modality, model,
review state, reviewer and when it was last saved, who it is assigned to and who has it open -
filtered by text and state, sorted by a click on a column; double-click opens one (the
de-identified image and its latest corrected mask) under the case's lock (store.team), held - with
a heartbeat - until another image replaces it; a case someone else holds is not opened, and the
panel says by whom. "Next case" / "Previous case" save the open case (through ``save_current``,
which the window sets) and open the neighbouring row as the table shows it. "Assigned to me" lists
only the reviewer's cases.

The store is read in a thread of its own as soon as the panel is shown, never on the UI thread and
never waiting behind (or superseding) work in the task runner (a model run at start-up would keep
the list empty for its whole run); opening a case goes through the task runner. The panel knows the
case session and the task runner, not the window, and hands an opened case on through
``case_opened``."""
from __future__ import annotations

import datetime
import threading
from typing import Callable, Optional

from PySide6 import QtCore, QtWidgets

COLUMNS = ("State", "Study", "Study year", "Modality", "Model", "Reviewer", "Last saved", "Uncertainty",
           "Assigned to", "Locked by", "Split", "Case")
_STATES = ("ai_draft", "in_review", "approved", "rejected")  # store.corrections.STATES (not imported: no numpy here)
_NEWEST_FIRST = ("Last saved", "Uncertainty")  # a first click on these sorts them descending


def _local(stamp: str) -> str:
    """A stored UTC time as the reviewer's local 'YYYY-MM-DD HH:MM'."""
    try:
        return datetime.datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return (stamp or "").replace("T", " ")[:16]


def cells(c) -> tuple:
    """The row of case ``c`` (store.corrections.Case), in COLUMNS' order: no patient identifier is
    in the store, so none can be here."""
    meta = c.source_meta or {}
    return (c.state.replace("_", " ") + (f": {c.reason}" if c.reason else ""),
            meta.get("study_description") or meta.get("series_description") or "", meta.get("study_year", ""),
            c.modality or meta.get("modality") or "", f"{c.model_id or ''} {c.model_version or ''}".strip(),
            c.reviewer, _local(c.saved or c.updated), "" if c.uncertainty is None else f"{c.uncertainty:.3f}",
            c.assignee, c.locked_by, c.split, c.id)


def _sort_key(c, column: str):
    if column == "Uncertainty":  # numbers, cases without one last either way round is fine
        return (c.uncertainty is None, c.uncertainty or 0.0)
    if column == "Last saved":
        return c.saved or c.updated
    return cells(c)[COLUMNS.index(column)].lower()


class WorklistPanel(QtWidgets.QWidget):
    case_opened = QtCore.Signal(object, object, object, str)  # image, ai, corrected, case id
    refreshed = QtCore.Signal()  # the table shows the store as it was just read
    failed = QtCore.Signal(str, object)  # what could not be done, the exception
    said = QtCore.Signal(str)  # a line for the status bar (Next / Previous case from the keyboard: the tab may be hidden)
    _read = QtCore.Signal(object, object)  # from the reading thread: cases, or the exception

    def __init__(self, session, tasks, parent=None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.session = session
        self.root = None  # None: the default store ($DELINEATE_STORE: a folder or a postgresql:// URL)
        self.reviewer = _reviewer  # who opens cases: the settings' reviewer of record, else the login
        # the window's "save the open case, then call this" (gui.case_controller); None: nothing is saved
        self.save_current: Optional[Callable[[Callable[[], None]], None]] = None
        # the window's "ask about unsaved corrections, then call this" for a double-clicked row
        self.confirm: Callable[[str, Callable[[], None]], None] = lambda _doing, go: go()
        self.held = None  # the lock of the case open for editing (store.team.HeldLock)
        self.cases: list = []  # in the table's order: row r shows cases[r]
        self.sort_by: Optional[tuple[str, bool]] = None  # (column, descending); None: last updated first
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)  # more cases in sight
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.open_row(r))
        self.table.horizontalHeader().sectionClicked.connect(self._header_clicked)
        self.table.horizontalHeaderItem(COLUMNS.index("Study year")).setToolTip(
            "Only the year of the study date is stored (the store keeps no dates that could identify a patient)")
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("Filter: study, modality, model, reviewer…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(lambda _t: self._apply_filter())
        self.state = QtWidgets.QComboBox()
        self.state.addItem("All states", None)
        for s in _STATES:
            self.state.addItem(s.replace("_", " "), s)
        self.state.currentIndexChanged.connect(lambda _i: self._apply_filter())
        self.status = QtWidgets.QLabel("Reading the store…")
        self.status.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.previous_button = QtWidgets.QPushButton("◀ Previous")
        self.previous_button.setToolTip("Save the open case and open the row above it (Ctrl+Left)")
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button = QtWidgets.QPushButton("Next case ▶")
        self.next_button.setToolTip("Save the open case (approved stays approved, else in review) and open "
                                    "the row below it (Ctrl+Right)")
        self.next_button.clicked.connect(lambda: self.step(1))
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.mine = QtWidgets.QCheckBox("Assigned to me")
        self.mine.setToolTip("Only the cases assigned to you (the reviewer of record)")
        self.mine.toggled.connect(lambda _on: self.refresh())
        self.by_uncertainty = QtWidgets.QCheckBox("Most uncertain first")  # review where the model doubts
        self.by_uncertainty.toggled.connect(lambda _on: self.refresh())
        lay = QtWidgets.QVBoxLayout(self)
        checks = QtWidgets.QHBoxLayout()
        checks.addWidget(self.mine)
        checks.addWidget(self.by_uncertainty)
        checks.addStretch(1)
        lay.addLayout(checks)
        filters = QtWidgets.QHBoxLayout()
        filters.addWidget(self.filter, 1)
        filters.addWidget(self.state)
        lay.addLayout(filters)
        buttons = QtWidgets.QHBoxLayout()  # above the table: a long list must not push them out of sight
        buttons.addWidget(self.previous_button)
        buttons.addWidget(self.next_button)
        buttons.addWidget(refresh)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)
        self._pending = False  # a read is running
        self._again = False  # asked for again meanwhile (the store or root may have changed since it began)
        self._read.connect(self._delivered, QtCore.Qt.ConnectionType.QueuedConnection)
        if session is not None:
            from app.session import ImageOpened, ReviewSaved

            subs = [session.subscribe(ReviewSaved, lambda _e: self.refresh()),
                    session.subscribe(ImageOpened, self._image_opened)]
            self.destroyed.connect(lambda *_: [sub.cancel() for sub in subs])
        self.destroyed.connect(lambda *_: self.release())
        # at the first turn of the event loop: whoever made the panel may set ``root`` first
        QtCore.QTimer.singleShot(0, self.refresh)

    # -- listing -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the store in a thread of its own and show it; a refresh asked for while one runs
        reads again when it ends, and only the latest is shown."""
        if self._pending:
            self._again = True
            return
        self._pending = True
        self._start_refresh()

    def _start_refresh(self) -> None:
        import app.actions.store_cases as store_cases

        self._again = False
        root, mine = self.root, self.reviewer() if self.mine.isChecked() else None

        def read() -> None:
            try:
                got = (store_cases.list_cases(root, assignee=mine), None)
            except Exception as exc:  # noqa: BLE001 - shown in the panel, never a crash
                got = (None, exc)
            try:
                self._read.emit(*got)
            except RuntimeError:  # the panel was closed meanwhile
                pass

        threading.Thread(target=read, name="read the worklist", daemon=True).start()

    def _delivered(self, cases, exc) -> None:
        if self._again:  # what was read may be stale already: read again, show only the latest
            self._start_refresh()
            return
        self._pending = False
        if exc is not None:
            self.status.setText(f"Cannot read the store: {exc}")
            self.failed.emit("corrections store", exc)
            return
        self.cases = list(cases)
        self._show()
        self.refreshed.emit()

    def _header_clicked(self, col: int) -> None:
        column = COLUMNS[col]
        if self.sort_by is not None and self.sort_by[0] == column:
            self.sort_by = (column, not self.sort_by[1])
        else:
            self.sort_by = (column, column in _NEWEST_FIRST)
        self.by_uncertainty.blockSignals(True)  # a chosen column replaces "most uncertain first"
        self.by_uncertainty.setChecked(False)
        self.by_uncertainty.blockSignals(False)
        self._show()

    def _show(self) -> None:
        """Fill the table from ``cases`` in the chosen order; the filter hides rows, never removes them."""
        header = self.table.horizontalHeader()
        if self.by_uncertainty.isChecked():  # cases without a measured uncertainty last
            self.cases.sort(key=lambda c: -c.uncertainty if c.uncertainty is not None else float("inf"))
            header.setSortIndicatorShown(False)
        elif self.sort_by is not None:
            column, descending = self.sort_by
            self.cases.sort(key=lambda c: _sort_key(c, column), reverse=descending)
            header.setSortIndicatorShown(True)
            header.setSortIndicator(COLUMNS.index(column), QtCore.Qt.SortOrder.DescendingOrder if descending
                                    else QtCore.Qt.SortOrder.AscendingOrder)
        self.table.setRowCount(len(self.cases))
        for r, c in enumerate(self.cases):
            for col, text in enumerate(cells(c)):
                self.table.setItem(r, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self._apply_filter()

    def _apply_filter(self) -> None:
        text, state = self.filter.text().strip().lower(), self.state.currentData()
        shown = 0
        for r, c in enumerate(self.cases):
            visible = (state is None or c.state == state) and (
                not text or any(text in cell.lower() for cell in cells(c)))
            self.table.setRowHidden(r, not visible)
            shown += visible
        n = len(self.cases)
        where = " assigned to you" if self.mine.isChecked() else " in the store"
        if not n:
            self.status.setText("No case assigned to you" if self.mine.isChecked() else "No saved corrections yet")
        elif shown == n:
            self.status.setText(f"{n} case{'s' * (n != 1)}{where}")
        else:
            self.status.setText(f"{shown} of {n} case{'s' * (n != 1)}{where} shown (filtered)")

    def visible_ids(self) -> list[str]:
        """The case ids of the rows the filter shows, top to bottom."""
        return [c.id for r, c in enumerate(self.cases) if not self.table.isRowHidden(r)]

    # -- next / previous -----------------------------------------------------------------------
    def neighbour(self, delta: int) -> Optional[str]:
        """The case ``delta`` rows from the open one among the shown rows (the open one not listed:
        the first row going down, the last going up); None past either end."""
        ids = self.visible_ids()
        current = getattr(self.session, "store_case", None)
        if current in ids:
            i = ids.index(current) + delta
        else:
            i = 0 if delta > 0 else len(ids) - 1
        return ids[i] if 0 <= i < len(ids) else None

    def step(self, delta: int) -> Optional[str]:
        """Save the open case, then open the neighbouring row (``delta`` +1: next, -1: previous).
        The target is chosen now: the save re-sorts the list. Nothing opens if the save fails."""
        target = self.neighbour(delta)
        if target is None:
            self.status.setText("No next case in the list" if delta > 0 else "No previous case in the list")
            self.said.emit(self.status.text() + ": the open case stays open, not saved")
            return None
        if self.save_current is None:
            self.open_case(target)
        else:
            self.save_current(lambda: self.open_case(target))
        return target

    # -- opening -------------------------------------------------------------------------------
    def open_row(self, row: int) -> None:
        if 0 <= row < len(self.cases):
            case_id = self.cases[row].id
            self.confirm(f"opening case {case_id}", lambda: self.open_case(case_id))

    def open_case(self, case_id: str) -> None:
        """Open the case for editing: its lock is taken first (the lock of the case open before is
        let go), so nobody else edits it meanwhile."""
        from app.actions.store_cases import release_case, take_case

        root, reviewer, previous = self.root, self.reviewer(), self.held
        self.held = None

        def work(p, c, _part):
            if previous is not None:
                release_case(previous)
            return take_case(case_id, reviewer, root, p, c)

        ids = [c.id for c in self.cases]
        if case_id in ids:
            self.table.selectRow(ids.index(case_id))
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
