"""File > Open from PACS: choose a node (or add, edit, test one), search it (patient ID or name, a
study date range, modality, accession), pick a study, then a series (a thumbnail of its middle slice
beside each), and open it: the series is retrieved into the local cache in the window's task runner
(progress and Cancel in the status bar, its first instance shown as it arrives), then opened from the
cache folder exactly as a local DICOM folder is. A cancelled or failed retrieve leaves nothing in the
cache and opens nothing. All the work is app.actions.pacs, run off the UI thread."""
from __future__ import annotations

from typing import Optional

from PySide6 import QtCore, QtGui, QtWidgets

from app.actions import pacs as actions
from core.errors import Cancelled, DelineateError
from gui.pacs_node_dialog import configured_nodes, edit_node
from gui.workers import TaskBar

STUDY_COLUMNS = ("Patient ID", "Patient name", "Date", "Description", "Modalities", "Accession", "Images")
SERIES_COLUMNS = ("", "#", "Modality", "Description", "Images")
THUMB = 96
MODALITIES = ("", "CT", "MR", "US", "PT", "CR", "DX", "MG", "NM", "XA", "SEG", "RTSTRUCT")


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _table(columns) -> QtWidgets.QTableWidget:
    """A read-only table, one row selected at a time; the Description column takes the spare width."""
    t = QtWidgets.QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    header = t.horizontalHeader()
    header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(columns.index("Description"), QtWidgets.QHeaderView.ResizeMode.Stretch)
    return t


def _thumb_icon(array) -> QtGui.QIcon:
    h, w = array.shape
    image = QtGui.QImage(array.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    pixmap = QtGui.QPixmap.fromImage(image).scaled(THUMB, THUMB, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                                   QtCore.Qt.TransformationMode.SmoothTransformation)
    return QtGui.QIcon(pixmap)


class PacsBrowser(QtWidgets.QDialog):
    def __init__(self, session, shell, opener, parent=None) -> None:
        super().__init__(parent)
        self.session, self.shell, self.opener = session, shell, opener
        self.setWindowTitle("Open from PACS")
        self.nodes: dict = {}
        self.studies: list = []
        self.series: list = []
        self.retrieved = None  # the cache folder of the last complete retrieve (tests read it)
        self.retrieve_error = None  # the last retrieve's error or Cancelled
        self._filling = False

        self.node_box = QtWidgets.QComboBox()
        self.node_box.setMinimumWidth(260)
        node_row = QtWidgets.QHBoxLayout()
        node_row.addWidget(QtWidgets.QLabel("Node"))
        node_row.addWidget(self.node_box, 1)
        for text, slot in (("Add…", self.add_node), ("Edit…", self.edit_node), ("Remove", self.remove_node),
                           ("Test", self.test_node)):
            b = QtWidgets.QPushButton(text)
            b.clicked.connect(slot)
            node_row.addWidget(b)

        self.patient_id, self.patient_name, self.accession = (QtWidgets.QLineEdit() for _ in range(3))
        self.patient_name.setPlaceholderText("Doe^J*")
        self.date_from, self.date_to = QtWidgets.QLineEdit(), QtWidgets.QLineEdit()
        for w in (self.date_from, self.date_to):
            w.setPlaceholderText("YYYY-MM-DD")
        self.modality = QtWidgets.QComboBox()
        self.modality.setEditable(True)
        self.modality.addItems(MODALITIES)
        self.search_button = QtWidgets.QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        form = QtWidgets.QGridLayout()
        for col, (label, w) in enumerate((("Patient ID", self.patient_id), ("Patient name", self.patient_name),
                                          ("Accession", self.accession))):
            form.addWidget(QtWidgets.QLabel(label), 0, 2 * col)
            form.addWidget(w, 0, 2 * col + 1)
        for col, (label, w) in enumerate((("Date from", self.date_from), ("to", self.date_to),
                                          ("Modality", self.modality))):
            form.addWidget(QtWidgets.QLabel(label), 1, 2 * col)
            form.addWidget(w, 1, 2 * col + 1)
        form.addWidget(self.search_button, 0, 6, 2, 1)

        self.study_table = _table(STUDY_COLUMNS)
        self.study_table.itemSelectionChanged.connect(self._study_chosen)
        self.series_table = _table(SERIES_COLUMNS)
        self.series_table.setIconSize(QtCore.QSize(THUMB, THUMB))
        self.series_table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.series_table.horizontalHeader().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Fixed)
        self.series_table.setColumnWidth(0, THUMB + 8)
        self.series_table.doubleClicked.connect(self.open_selected)
        self.series_table.itemSelectionChanged.connect(self._update_buttons)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.study_table)
        split.addWidget(self.series_table)
        split.setSizes([200, 320])

        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.message.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tasks = TaskBar()  # searches: a new one supersedes the last
        self.thumb_tasks = TaskBar()  # thumbnails, apart, so they never cancel a search
        self.thumb_tasks.bar.setFixedWidth(90)
        self.cache_label = QtWidgets.QLabel()
        self.empty_button = QtWidgets.QPushButton("Empty cache")
        self.empty_button.clicked.connect(self.empty_cache)
        self.open_button = QtWidgets.QPushButton("Open series")
        self.open_button.clicked.connect(self.open_selected)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.hide)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.cache_label)
        bottom.addWidget(self.empty_button)
        bottom.addStretch(1)
        bottom.addWidget(self.thumb_tasks)
        bottom.addWidget(self.tasks)
        bottom.addWidget(self.open_button)
        bottom.addWidget(close)

        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(node_row)
        lay.addLayout(form)
        lay.addWidget(split, 1)
        lay.addWidget(self.message)
        lay.addLayout(bottom)
        self.resize(980, 680)
        self.reload_nodes()
        self._update_buttons()

    # -- nodes --------------------------------------------------------------------------------
    def reload_nodes(self, select: Optional[str] = None) -> None:
        current = select or self.node_box.currentText()
        try:
            self.nodes = configured_nodes()
        except DelineateError as exc:
            self.nodes = {}
            self.say(str(exc), error=True)
        self.node_box.clear()
        for name, node in sorted(self.nodes.items()):
            self.node_box.addItem(f"{name}  —  {node}", name)
        i = self.node_box.findData(current)
        if i >= 0:
            self.node_box.setCurrentIndex(i)
        if not self.nodes:
            self.say("No PACS node yet: Add… one (AE title, host and port, or a DICOMweb URL).")

    def node_name(self) -> str:
        return self.node_box.currentData() or ""

    def node(self):
        name = self.node_name()
        if name not in self.nodes:
            raise DelineateError("choose a PACS node first (Add… one if there is none)")
        return self.nodes[name]

    def add_node(self) -> None:
        name = edit_node(self)
        if name:
            self.reload_nodes(name)

    def edit_node(self) -> None:
        name = self.node_name()
        if name in self.nodes:
            saved = edit_node(self, name, self.nodes[name])
            if saved:
                self.reload_nodes(saved)

    def remove_node(self) -> None:
        name = self.node_name()
        if name and QtWidgets.QMessageBox.question(self, "Remove PACS node", f"Remove the node {name}?") == \
                QtWidgets.QMessageBox.StandardButton.Yes:
            actions.remove_node(name)
            self.reload_nodes()

    def test_node(self) -> None:
        self._run("Testing", lambda node, p, c: actions.echo(node, progress=p, cancel=c),
                  lambda node, s: self.say(f"{node} answered in {s * 1000:.0f} ms"))

    # -- search -------------------------------------------------------------------------------
    def say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c92a2a; font-weight: bold" if error else "")
        self.message.setText(text)

    def query(self):
        from pacs.query import Query

        return Query(patient_id=self.patient_id.text().strip(), patient_name=self.patient_name.text().strip(),
                     date_from=self.date_from.text().strip(), date_to=self.date_to.text().strip(),
                     modality=self.modality.currentText().strip().upper(), accession=self.accession.text().strip())

    def _run(self, verb: str, fn, done) -> None:
        """``fn(node, progress, cancel)`` in the dialog's runner; an error shows as one line naming
        the node."""
        try:
            node = self.node()
        except DelineateError as exc:
            self.say(str(exc), error=True)
            return
        self.say(f"{verb} {node}…")
        self.tasks.start(f"{verb} {self.node_name()}", lambda p, c, _part: fn(node, p, c),
                         lambda result: done(node, result), self._failed)

    def _failed(self, exc) -> None:
        if isinstance(exc, Cancelled):
            self.say("Cancelled.")
        else:
            self.say(str(exc) or type(exc).__name__, error=True)

    def search(self) -> None:
        try:
            query = self.query()
        except DelineateError as exc:
            self.say(str(exc), error=True)
            return
        self._run("Searching", lambda node, p, c: actions.find(node, query, "study", progress=p, cancel=c),
                  self._studies_found)

    def _studies_found(self, node, studies: list) -> None:
        self.studies = sorted(studies, key=lambda m: m.study_date, reverse=True)
        self.series = []
        self.series_table.setRowCount(0)
        t = self.study_table
        self._filling = True  # no series search per row while the table fills
        t.setRowCount(len(self.studies))
        for row, m in enumerate(self.studies):
            cells = (m.patient_id, m.patient_name.replace("^", " "), _date(m.study_date), m.study_description,
                     m.modality.replace("\\", ", "), m.accession, "" if m.instances is None else m.instances)
            for col, text in enumerate(cells):
                t.setItem(row, col, QtWidgets.QTableWidgetItem(str(text)))
        self._filling = False
        self.say(f"{len(self.studies)} {'study' if len(self.studies) == 1 else 'studies'} on {node}")
        if self.studies:
            t.selectRow(0)
        self._update_buttons()

    def selected_study(self):
        rows = self.study_table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows and rows[0].row() < len(self.studies) else None

    def selected_series(self):
        rows = self.series_table.selectionModel().selectedRows()
        return self.series[rows[0].row()] if rows and rows[0].row() < len(self.series) else None

    def _study_chosen(self) -> None:
        study = self.selected_study()
        if study is None or self._filling:
            return
        from pacs.query import Query

        query = Query(study_uid=study.study_uid)
        self.series_table.setRowCount(0)
        self._run("Listing series on", lambda node, p, c: actions.find(node, query, "series", progress=p, cancel=c),
                  self._series_found)

    def _series_found(self, node, series: list) -> None:
        self.series = sorted(series, key=lambda m: (m.series_number is None, m.series_number or 0))
        t = self.series_table
        t.setRowCount(len(self.series))
        for row, m in enumerate(self.series):
            cells = ("", "" if m.series_number is None else m.series_number, m.modality,
                     m.series_description or "(no description)", "" if m.instances is None else m.instances)
            for col, text in enumerate(cells):
                t.setItem(row, col, QtWidgets.QTableWidgetItem(str(text)))
        images = [m for m in self.series if m.modality.upper() not in actions.NON_IMAGE]
        if images:
            t.selectRow(self.series.index(max(images, key=lambda m: m.instances or 0)))
        self.say(f"{len(self.series)} series in the study of {self.series[0].patient_id if self.series else '?'}"
                 f" on {node}")
        self._update_buttons()
        self._fetch_thumbnails(node, list(self.series))

    def _fetch_thumbnails(self, node, series: list) -> None:
        def work(progress, cancel, partial):
            for i, m in enumerate(series):
                cancel.check()
                try:
                    thumb = actions.thumbnail(node, m.study_uid, m.series_uid, modality=m.modality, size=THUMB,
                                              cancel=cancel)
                except Cancelled:
                    raise
                except DelineateError:
                    thumb = None  # a series without a thumbnail still opens
                if thumb is not None:
                    partial((m.series_uid, thumb))
                progress((i + 1) / len(series), "thumbnails")
            return len(series)

        self.thumb_tasks.start("Thumbnails", work, lambda _n: None, lambda _exc: None, self._thumbnail)

    def _thumbnail(self, item) -> None:
        uid, array = item
        for row, m in enumerate(self.series):
            if m.series_uid == uid:
                cell = QtWidgets.QTableWidgetItem()
                cell.setIcon(_thumb_icon(array))
                self.series_table.setItem(row, 0, cell)

    def thumbnails_shown(self) -> int:
        return sum(1 for r in range(self.series_table.rowCount())
                   if self.series_table.item(r, 0) is not None and not self.series_table.item(r, 0).icon().isNull())

    def _update_buttons(self) -> None:
        self.open_button.setEnabled(self.selected_series() is not None)

    # -- retrieve and open --------------------------------------------------------------------
    def open_selected(self) -> None:
        m = self.selected_series()
        if m is None:
            self.say("Choose a series to open.", error=True)
            return
        try:
            node = self.node()
        except DelineateError as exc:
            self.say(str(exc), error=True)
            return
        self.retrieved = self.retrieve_error = None
        what = f"{m.series_description or 'series ' + str(m.series_number or '')} from {self.node_name()}"
        self.hide()  # the first slice appears in the window; progress and Cancel are in its status bar

        def work(progress, cancel, partial):
            return actions.retrieve(node, m.study_uid, m.series_uid, expected=m.instances, progress=progress,
                                    cancel=cancel, on_preview=partial)

        self.shell.tasks.start(f"Retrieving {what}", work, self._retrieved,
                               lambda exc: self._retrieve_failed(f"{node}: {what}", exc), self._preview)

    def _preview(self, image) -> None:
        """The first instance received, shown while the rest comes (only if nothing else is open)."""
        if self.session.volume is None or self.session.previewing:
            self.session.set_image(image, preview=True)

    def _retrieved(self, folder) -> None:
        self.retrieved = folder
        self.update_cache_label()
        self.opener.open_path(str(folder))  # the local-folder path: scan, first slice, whole series

    def _retrieve_failed(self, what: str, exc) -> None:
        self.retrieve_error = exc
        self.shell.failed(what, exc)  # drops the first slice shown; a cancel is a status-bar message
        if isinstance(exc, Cancelled):
            self.shell.message(f"{what}: retrieve cancelled; nothing was kept or opened", 10000)

    # -- cache --------------------------------------------------------------------------------
    def update_cache_label(self) -> None:
        try:
            n, used, limit = actions.cache_usage()
        except (DelineateError, OSError) as exc:
            self.cache_label.setText(f"Cache: {exc}")
            return
        self.cache_label.setText(f"Cache: {n} series, {_size(used)} of {_size(limit)}")

    def empty_cache(self) -> None:
        try:
            n = actions.empty_cache()
        except (DelineateError, OSError) as exc:
            self.say(str(exc), error=True)
            return
        self.say(f"Cache emptied ({n} series removed).")
        self.update_cache_label()

    def showEvent(self, ev) -> None:
        self.update_cache_label()
        super().showEvent(ev)

    def wait(self, timeout_ms: int = -1) -> bool:
        """At shutdown: cancel the searches and thumbnails and wait for their threads."""
        return self.tasks.wait(timeout_ms) & self.thumb_tasks.wait(timeout_ms)
