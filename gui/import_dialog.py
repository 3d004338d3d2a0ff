"""Import a model (TorchScript, ONNX, MONAI bundle, nnU-Net v2 folder), asking for what its files
cannot say. The import runs in the window's worker; the model appears in Segment → Run a model.
A TorchScript file is a program: it is imported only when the user ticks "run its code" (the
CLI's --trust-code); without it the import is refused with a one-line reason. The dialog fills an
app.actions.models.ImportSpec (``spec()``); the kinds and normalisations are the ones the CLI offers."""
from __future__ import annotations

from PySide6 import QtWidgets

from app.actions.models import DEFAULT_CT_WINDOW, IMPORT_NORMALISATIONS, KINDS, ImportSpec
from core.errors import DelineateError
from gui.dialogs import path_row, standard_buttons

KIND_NAMES = {"torchscript": "TorchScript file", "onnx": "ONNX file", "monai-bundle": "MONAI bundle folder",
              "nnunet": "nnU-Net v2 model folder"}


class ImportDialog(QtWidgets.QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import a model")
        self.kind = QtWidgets.QComboBox()
        for kind in KINDS:
            self.kind.addItem(KIND_NAMES.get(kind, kind), kind)
        self.path = QtWidgets.QLineEdit()
        self.model_id = QtWidgets.QLineEdit()
        self.model_id.setPlaceholderText("e.g. liver-ct (required for TorchScript/ONNX)")
        self.modality = QtWidgets.QComboBox()
        self.modality.setEditable(True)
        self.modality.addItems(["CT", "MR", "US", "SM", "OT"])
        self.labels = QtWidgets.QLineEdit()
        self.labels.setPlaceholderText("1=liver,2=tumour")
        self.patch = QtWidgets.QLineEdit()
        self.patch.setPlaceholderText("96,96,96 (network array order)")
        self.spacing = QtWidgets.QLineEdit()
        self.spacing.setPlaceholderText("x,y,z mm; empty = the image's own grid")
        self.norm = QtWidgets.QComboBox()
        self.norm.addItems(IMPORT_NORMALISATIONS)
        self.window = QtWidgets.QLineEdit(",".join(f"{v:g}" for v in DEFAULT_CT_WINDOW))
        self.trust_code = QtWidgets.QCheckBox("This model contains code (TorchScript). Run it? "
                                              "Only for a model from a source you trust.")
        self.trust_code.setToolTip("TorchScript is a program, not only weights: it runs in a separate, confined "
                                   "process, but with your account's rights where confinement is unavailable. "
                                   "ONNX holds no code: prefer it.")
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self._kind_changed()
        form = QtWidgets.QFormLayout()
        form.addRow("Kind", self.kind)
        form.addRow("File / folder", path_row(self.path, self._browse))
        form.addRow("Model id", self.model_id)
        form.addRow("Modality", self.modality)
        form.addRow("Labels", self.labels)
        form.addRow("Patch size", self.patch)
        form.addRow("Spacing", self.spacing)
        form.addRow("Intensity", self.norm)
        form.addRow("CT window (HU)", self.window)
        form.addRow("Code", self.trust_code)
        note = QtWidgets.QLabel("Bundles and nnU-Net folders carry their labels, spacing, patch and intensity "
                                "handling; TorchScript and ONNX files do not, so give them here. Model files are "
                                "read as data and never run, except TorchScript when you tick 'Run it'; prefer "
                                "ONNX, which holds no code.")
        note.setWordWrap(True)
        self.problem = QtWidgets.QLabel()  # a malformed field, said here: the dialog stays open
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b")
        self.problem.hide()
        standard_buttons(self, QtWidgets.QDialogButtonBox.StandardButton.Ok, form, note, self.problem)

    def _kind_changed(self, *_args) -> None:
        torchscript = self.kind.currentData() == "torchscript"
        self.trust_code.setEnabled(torchscript)  # only TorchScript holds code
        if not torchscript:
            self.trust_code.setChecked(False)

    def _browse(self) -> None:
        if self.kind.currentData() in ("torchscript", "onnx"):
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.pt *.ts *.onnx);;All (*)")
        else:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "Model folder")
        if path:
            self.path.setText(path)

    def spec(self) -> ImportSpec:
        """The import request as typed; raises DelineateError naming a malformed field."""
        kind = self.kind.currentData()
        return ImportSpec.from_text(kind, self.path.text(), id=self.model_id.text(), modality=self.modality.currentText(),
                                    labels=self.labels.text(), patch=self.patch.text(), spacing=self.spacing.text(),
                                    norm=self.norm.currentText(), window=self.window.text(),
                                    trust_code=kind == "torchscript" and self.trust_code.isChecked())

    def accept(self) -> None:
        """Stays open on a malformed field, saying which (what is missing for the kind is checked by
        the import itself, which says so)."""
        try:
            self.spec()
        except DelineateError as exc:
            self.problem.setText(str(exc))
            self.problem.show()
            return
        self.problem.hide()
        super().accept()
