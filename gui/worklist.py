"""Worklist: the cases in the corrections store with their review state; double-click opens one
(the de-identified image and its latest corrected mask)."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

COLUMNS = ("State", "Model", "Updated", "Uncertainty", "Split", "Case")


class WorklistPanel(QtWidgets.QWidget):
    def __init__(self, window, parent=None) -> None:
        super().__init__(parent)
        self.window = window
        self.root = None  # None: the default store
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.open_row(r))
        refresh = QtWidgets.QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(refresh)
        self.cases: list = []

    def refresh(self) -> None:
        from store.corrections import CorrectionsStore

        store = CorrectionsStore(self.root)
        try:
            self.cases = store.cases()
        finally:
            store.close()
        self.table.setRowCount(len(self.cases))
        for r, c in enumerate(self.cases):
            cells = (c.state.replace("_", " ") + (f": {c.reason}" if c.reason else ""),
                     f"{c.model_id} {c.model_version}".strip(), c.updated.replace("T", " ")[:16],
                     "" if c.uncertainty is None else f"{c.uncertainty:.3f}", c.split, c.id)
            for col, text in enumerate(cells):
                self.table.setItem(r, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def open_row(self, row: int) -> None:
        from store.corrections import CorrectionsStore

        case_id, root = self.cases[row].id, self.root

        def fn(_p, _c, _part):
            store = CorrectionsStore(root)
            try:
                return store.load(case_id)
            finally:
                store.close()

        self.window.tasks.start(f"Opening case {case_id}", fn, self._opened,
                                lambda exc: self.window._failed(f"case {case_id}", exc))

    def _opened(self, loaded) -> None:
        image, _ai, corrected = loaded
        self.window.segmentation = None
        self.window._loaded(f"store case", image)
        self.window.set_labelmap(corrected)
        self.window.setWindowTitle(f"Delineate — store case ({image.geometry.size})")
