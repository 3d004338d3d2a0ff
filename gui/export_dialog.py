"""File > Export: format, destination and de-identification for the case on screen."""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from core.errors import Cancelled
from export.case import FORMATS, SUFFIXES
from gui.dialogs import path_row, standard_buttons


class ExportDialog(QtWidgets.QDialog):
    def __init__(self, folder: str, stem: str, can_fractional: bool, parent=None, explanation=None, at=None) -> None:
        """``explanation``: the heat map on screen (core.overlay.HeatMap), which the report can show
        with its colour bar on a chosen plane through ``at`` (LPS mm; default its peak)."""
        super().__init__(parent)
        self.setWindowTitle("Export segmentation")
        self.stem = stem
        self.format = QtWidgets.QComboBox()
        for key, text in FORMATS.items():
            self.format.addItem(text, key)
        self.path = QtWidgets.QLineEdit(str(Path(folder) / stem))
        self.deidentify = QtWidgets.QCheckBox("De-identify (DICOM PS3.15 Annex E basic profile; the report "
                                              "omits patient and study)")
        self.fractional = QtWidgets.QCheckBox("SEG: the model's probabilities (fractional) instead of the mask")
        self.fractional.setEnabled(can_fractional)
        self.compress = QtWidgets.QCheckBox("SEG: compress (JPEG 2000 lossless, ~30x smaller; some viewers cannot "
                                            "read it)")
        self.heat, self.at = explanation, at
        self.explain = QtWidgets.QCheckBox("Report: include the explanation view" +
                                           (f" ({explanation.name}, with its colour bar)" if explanation else
                                            " (no heat map shown)"))
        self.explain.setEnabled(explanation is not None)
        self.explain.setChecked(explanation is not None)
        self.explain_view = QtWidgets.QComboBox()
        self.explain_view.addItems(["axial", "coronal", "sagittal"])
        self.explain_view.setEnabled(explanation is not None)
        self.format.currentIndexChanged.connect(self._format_changed)
        form = QtWidgets.QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Save to", path_row(self.path, self._browse))
        form.addRow(self.deidentify)
        form.addRow(self.fractional)
        form.addRow(self.compress)
        self.explain_row = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(self.explain_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.explain)
        row.addWidget(self.explain_view)
        row.addStretch(1)
        form.addRow(self.explain_row)
        standard_buttons(self, QtWidgets.QDialogButtonBox.StandardButton.Save, form)
        self._format_changed()
        self.resize(640, 180)

    def fmt(self) -> str:
        return self.format.currentData()

    def _format_changed(self) -> None:
        fmt = self.fmt()
        p = Path(self.path.text())
        base = p.parent / self.stem
        suffix = SUFFIXES.get(fmt, ("",))[0]
        self.path.setText(str(base) + (suffix if fmt not in ("stl", "obj") else f"-{fmt}"))
        self.fractional.setVisible(fmt == "seg")
        self.compress.setVisible(fmt == "seg")
        self.deidentify.setVisible(fmt in ("seg", "rtstruct", "report"))
        self.explain_row.setVisible(fmt == "report")

    def _browse(self) -> None:
        if self.fmt() in ("stl", "obj"):
            chosen = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder for the surfaces", self.path.text())
        else:
            chosen, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if chosen:
            self.path.setText(chosen)

    def values(self) -> dict:
        return {"fmt": self.fmt(), "path": self.path.text(), "deidentify": self.deidentify.isChecked(),
                "fractional": self.fractional.isChecked() and self.fmt() == "seg",
                "compress": self.compress.isChecked() and self.fmt() == "seg",
                "explanation": self.explanation()}

    def explanation(self):
        """The chosen explanation view for the report (export.heat_image.ExplanationView), or None."""
        if self.fmt() != "report" or self.heat is None or not self.explain.isChecked():
            return None
        from export.heat_image import ExplanationView

        return ExplanationView(self.heat, self.explain_view.currentText(), self.at)


def export_failed(window, path: str, exc) -> None:
    """An export stopped: say so and why (nothing was written - exports are all or nothing); a
    cancelled one only in the status bar."""
    if isinstance(exc, Cancelled):
        window.statusBar().showMessage(f"Export to {path} cancelled; nothing was written", 8000)
        return
    problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, "Delineate — export failed",
                                f"Export failed:\n{path}\n\n{problem}\n\nNo file was written.",
                                QtWidgets.QMessageBox.StandardButton.Ok, window)
    if getattr(exc, "trace", None) and not hasattr(exc, "problem"):
        box.setDetailedText(exc.trace)
    box.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
    box.open()
    window._last_error = box  # kept for tests and so it is not garbage-collected while shown
