"""File > Send to PACS: the segmentation on screen as a DICOM SEG or an RTSTRUCT, or the review
report as an Encapsulated PDF, sent to a configured node (C-STORE or STOW-RS), de-identified or not,
through app.actions.pacs.send_export in the window's task runner."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.errors import Cancelled
from gui.dialogs import standard_buttons

WHAT = (("seg", "DICOM SEG (the segmentation)"), ("rtstruct", "RTSTRUCT (contours)"),
        ("report", "Review report (Encapsulated PDF in the image's study)"))


class SendDialog(QtWidgets.QDialog):
    def __init__(self, nodes: dict, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send to PACS")
        self.node_box = QtWidgets.QComboBox()
        for name, node in sorted(nodes.items()):
            self.node_box.addItem(f"{name}  —  {node}", name)
        self.what = QtWidgets.QComboBox()
        for key, text in WHAT:
            self.what.addItem(text, key)
        self.deidentify = QtWidgets.QCheckBox("De-identify (PS3.15 basic profile): the archive gets a de-identified "
                                              "copy of the images with it, in a study of its own")
        form = QtWidgets.QFormLayout()
        form.addRow("Node", self.node_box)
        form.addRow("Send", self.what)
        form.addRow(self.deidentify)
        standard_buttons(self, QtWidgets.QDialogButtonBox.StandardButton.Ok, form)
        self.resize(620, 0)

    def values(self) -> dict:
        return {"name": self.node_box.currentData(), "fmt": self.what.currentData(),
                "deidentify": self.deidentify.isChecked()}


def send_failed(window, what: str, exc) -> None:
    """A send stopped: one message naming the node and the problem; a cancel only in the status bar."""
    if isinstance(exc, Cancelled):
        window.statusBar().showMessage(f"{what}: cancelled", 8000)
        return
    from app import logs

    logs.error(exc, "window")
    problem = str(exc) or type(exc).__name__
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, "Delineate — send failed",
                                f"{what} failed:\n\n{problem}", QtWidgets.QMessageBox.StandardButton.Ok, window)
    if getattr(exc, "trace", None) and not hasattr(exc, "problem") and not hasattr(exc, "node"):
        box.setDetailedText(exc.trace)
    box.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
    box.open()
    window._last_error = box
