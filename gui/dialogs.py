"""Small dialogs: the DICOM series browser, the shortcut list, the model comparison, errors and the
question before unsaved corrections are left."""
from __future__ import annotations

from typing import Optional

from PySide6 import QtCore, QtWidgets

from gui.shortcuts import SHORTCUTS

SERIES_COLUMNS = ("#", "Description", "Modality", "Images", "Size", "Study")


class SeriesDialog(QtWidgets.QDialog):
    """Lists the series/stacks found in a folder; double-click or OK opens one."""

    def __init__(self, folder: str, series: list, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Series in {folder}")
        self.series = series
        self.table = QtWidgets.QTableWidget(len(series), len(SERIES_COLUMNS))
        self.table.setHorizontalHeaderLabels(SERIES_COLUMNS)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        for row, info in enumerate(series):
            s = info.summary()
            cells = (s["number"], s["series"] or "(no description)", s["modality"], s["images"],
                     s["size"], s["study"])
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(str(text)))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        largest = max(range(len(series)), key=lambda r: series[r].n_images) if series else 0
        self.table.selectRow(largest)
        self.table.doubleClicked.connect(self.accept)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Open
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self.resize(760, 320)

    def chosen(self) -> Optional[object]:
        rows = self.table.selectionModel().selectedRows()
        return self.series[rows[0].row()] if rows else None


class ShortcutsDialog(QtWidgets.QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse shortcuts")
        table = QtWidgets.QTableWidget(len(SHORTCUTS), 2)
        table.setHorizontalHeaderLabels(("Key", "Does"))
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, (_aid, key, text) in enumerate(SHORTCUTS):
            table.setItem(row, 0, QtWidgets.QTableWidgetItem(key))
            table.setItem(row, 1, QtWidgets.QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        self.table = table
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(table)
        lay.addWidget(close)
        self.resize(560, 560)


class CompareDialog(QtWidgets.QDialog):
    """Agreement between two models' masks, per label (non-modal: the disagreement map is on screen)."""

    COLUMNS = ("Label", "Dice", "IoU", "HD95 mm", "ASSD mm", "ml (shown)", "ml (other)")

    def __init__(self, mine: str, card, rows, fraction: float, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{mine} vs {card.id}")
        self.table = QtWidgets.QTableWidget(len(rows), len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, c in enumerate(rows):
            for col, v in enumerate((c.name, c.dice, c.iou, c.hausdorff95_mm, c.assd_mm, c.volume_a_ml, c.volume_b_ml)):
                text = v if isinstance(v, str) else ("—" if v == float("inf") else f"{v:.3f}" if col < 3 else
                                                    f"{v:.1f}" if col < 5 else f"{v:.3g}")
                self.table.setItem(r, col, QtWidgets.QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        note = QtWidgets.QLabel(f"The models label {fraction * 100:.2f} % of voxels differently; the "
                                "<b>Disagreement</b> heat map shows where (Heat maps panel, H toggles). "
                                "Where they disagree is where to look first.")
        note.setWordWrap(True)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(QtWidgets.QLabel(f"<b>{mine}</b> (shown, editable) vs <b>{card.name}</b>"))
        lay.addWidget(self.table)
        lay.addWidget(note)
        lay.addWidget(close)
        self.resize(640, 300)


def path_row(line_edit: QtWidgets.QLineEdit, browse) -> QtWidgets.QHBoxLayout:
    """A path field with a Browse… button beside it that calls ``browse``."""
    button = QtWidgets.QPushButton("Browse…")
    button.clicked.connect(browse)
    row = QtWidgets.QHBoxLayout()
    row.addWidget(line_edit, 1)
    row.addWidget(button)
    return row


def standard_buttons(dialog: QtWidgets.QDialog, ok=QtWidgets.QDialogButtonBox.StandardButton.Ok,
                     *contents) -> QtWidgets.QVBoxLayout:
    """The dialog's layout: ``contents`` (layouts or widgets) above OK/Cancel wired to accept/reject."""
    buttons = QtWidgets.QDialogButtonBox(ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    lay = QtWidgets.QVBoxLayout(dialog)
    for item in contents:
        (lay.addLayout if isinstance(item, QtWidgets.QLayout) else lay.addWidget)(item)
    lay.addWidget(buttons)
    return lay


def show_error(parent, path, exc) -> None:
    """A file could not be opened: name it and say why; nothing else changes."""
    from app import logs

    logs.error(exc, "window")  # paths reduced to their suffixes, as every log line
    problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, "Delineate — cannot open",
                                f"Cannot open:\n{path}\n\n{problem}", QtWidgets.QMessageBox.StandardButton.Ok,
                                parent)
    trace = getattr(exc, "trace", None)
    if trace and not hasattr(exc, "problem"):
        box.setDetailedText(trace)
    box.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
    box.open()
    parent._last_error = box  # kept for tests and so it is not garbage-collected while shown


SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def ask_save_corrections(parent, case: str, doing: str) -> str:
    """"Save the corrections to <case> before <doing>?": SAVE, DISCARD or CANCEL (Escape, or the
    box closed). Tests answer it by replacing this function."""
    buttons = QtWidgets.QMessageBox.StandardButton
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, "Unsaved corrections",
                                f"Save the corrections to {case} before {doing}?",
                                buttons.Save | buttons.Discard | buttons.Cancel, parent)
    box.setInformativeText("Discard throws away the edits made since the segmentation was put up or last saved.")
    box.setDefaultButton(buttons.Save)
    box.setEscapeButton(buttons.Cancel)
    box.exec()
    clicked = box.standardButton(box.clickedButton()) if box.clickedButton() is not None else buttons.Cancel
    return {buttons.Save: SAVE, buttons.Discard: DISCARD}.get(clicked, CANCEL)
