"""Add or edit a PACS node: a DICOM archive (AE title, host, port, TLS) or a DICOMweb server (URL,
basic or bearer authentication), with a Test button (C-ECHO or a one-study QIDO-RS in a worker).

A password or token typed here is kept in memory for this session only (``SECRETS``); the settings
file names the environment variable that holds it instead (pacs.nodes never writes a secret)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from PySide6 import QtCore, QtWidgets

from app.actions import pacs as actions
from core.errors import Cancelled, DelineateError
from gui.workers import TaskBar

SECRETS: dict[str, str] = {}  # node name -> password or token typed in this session


def with_secret(name: str, node):
    """The node as the user configured it, with the secret typed this session, if any."""
    secret = SECRETS.get(name)
    if secret and hasattr(node, "secret"):
        return dataclasses.replace(node, secret=secret)
    return node


def configured_nodes() -> dict:
    """name -> node from the settings file, secrets of this session applied."""
    return {name: with_secret(name, n) for name, n in actions.settings().nodes.items()}


class NodeDialog(QtWidgets.QDialog):
    def __init__(self, name: str = "", node=None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS node" if not name else f"PACS node {name}")
        self.original = name
        self.name = QtWidgets.QLineEdit(name)
        self.kind = QtWidgets.QComboBox()
        self.kind.addItems(["DICOM (DIMSE)", "DICOMweb"])
        # DIMSE
        self.ae = QtWidgets.QLineEdit()
        self.ae.setMaxLength(16)
        self.host = QtWidgets.QLineEdit()
        self.port = QtWidgets.QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.tls = QtWidgets.QCheckBox("TLS (certificate verified)")
        # DICOMweb
        self.url = QtWidgets.QLineEdit()
        self.url.setPlaceholderText("https://pacs.example.org/dicom-web")
        self.auth = QtWidgets.QComboBox()
        self.auth.addItems(["none", "basic", "bearer"])
        self.username = QtWidgets.QLineEdit()
        self.secret = QtWidgets.QLineEdit()
        self.secret.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("kept for this session only, never saved")
        self.secret_env = QtWidgets.QLineEdit()
        self.secret_env.setPlaceholderText("the environment variable that holds it (for later sessions)")
        self.ca_file = QtWidgets.QLineEdit()
        self.ca_file.setPlaceholderText("CA bundle of the hospital's certificate authority (optional)")

        self.dimse_box = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(self.dimse_box)
        f.setContentsMargins(0, 0, 0, 0)
        f.addRow("AE title", self.ae)
        f.addRow("Host", self.host)
        f.addRow("Port", self.port)
        f.addRow("", self.tls)
        self.web_box = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(self.web_box)
        f.setContentsMargins(0, 0, 0, 0)
        f.addRow("URL", self.url)
        f.addRow("Authentication", self.auth)
        f.addRow("User name", self.username)
        f.addRow("Password / token", self.secret)
        f.addRow("or its variable", self.secret_env)
        local = actions.settings().local
        self.local_ae = QtWidgets.QLineEdit(local.ae_title)
        self.local_ae.setMaxLength(16)
        self.local_port = QtWidgets.QSpinBox()
        self.local_port.setRange(1, 65535)
        self.local_port.setValue(local.port)
        self.local_box = QtWidgets.QGroupBox("This computer, for every node (the archive must know it)")
        f = QtWidgets.QFormLayout(self.local_box)
        f.addRow("Our AE title", self.local_ae)
        f.addRow("Storage SCP port (C-MOVE only)", self.local_port)
        top = QtWidgets.QFormLayout()
        top.addRow("Name", self.name)
        top.addRow("Kind", self.kind)
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.tasks = TaskBar()
        self.test_button = QtWidgets.QPushButton("Test connection")
        self.test_button.clicked.connect(self.test)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Save
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton(self.test_button, QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.dimse_box)
        lay.addWidget(self.web_box)
        ca = QtWidgets.QFormLayout()
        ca.addRow("CA file", self.ca_file)
        lay.addLayout(ca)
        lay.addWidget(self.local_box)
        lay.addWidget(self.message)
        lay.addWidget(self.tasks)
        lay.addWidget(buttons)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.auth.currentTextChanged.connect(self._kind_changed)
        if node is not None:
            self._fill(name, node)
        self._kind_changed()
        self.setMinimumWidth(520)

    def _fill(self, name: str, node) -> None:
        self.ca_file.setText(node.ca_file or "")
        if hasattr(node, "url"):
            self.kind.setCurrentIndex(1)
            self.url.setText(node.url)
            self.auth.setCurrentText(node.auth)
            self.username.setText(node.username)
            self.secret_env.setText(node.secret_env)
            self.secret.setText(SECRETS.get(name, node.secret))
        else:
            self.ae.setText(node.ae_title)
            self.host.setText(node.host)
            self.port.setValue(node.port)
            self.tls.setChecked(node.tls)

    def _kind_changed(self) -> None:
        web = self.kind.currentIndex() == 1
        self.dimse_box.setVisible(not web)
        self.local_box.setVisible(not web)
        self.web_box.setVisible(web)
        needs = self.auth.currentText() != "none"
        for w in (self.username, self.secret, self.secret_env):
            w.setEnabled(needs)
        self.username.setEnabled(self.auth.currentText() == "basic")

    def node(self):
        """The node as entered; DelineateError says what is wrong."""
        from pacs.nodes import DimseNode, WebNode

        name = self.name.text().strip()
        ca = self.ca_file.text().strip() or None
        if self.kind.currentIndex() == 1:
            return WebNode(self.url.text().strip(), name, self.auth.currentText(), self.username.text().strip(),
                           self.secret_env.text().strip(), ca, self.secret.text())
        if not self.host.text().strip():
            raise DelineateError(f"{name or 'the node'}: give the archive's host name or address")
        return DimseNode(self.ae.text().strip(), self.host.text().strip(), self.port.value(), name,
                         self.tls.isChecked(), ca)

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c92a2a; font-weight: bold" if error else "color: #2b8a3e")
        self.message.setText(text)

    def test(self) -> None:
        from pacs.nodes import LocalAE

        try:
            node = self.node()
            local = LocalAE(self.local_ae.text().strip(), self.local_port.value())
        except DelineateError as exc:
            self._say(str(exc), True)
            return
        self._say(f"Asking {node}…")
        self.tasks.start(f"Testing {node}", lambda p, c, _part: actions.echo(node, local=local, progress=p, cancel=c),
                         lambda s: self._say(f"{node} answered in {s * 1000:.0f} ms"),
                         lambda exc: self._say("cancelled" if isinstance(exc, Cancelled) else str(exc), True))

    def accept(self) -> None:
        try:
            node = self.node()
            if not hasattr(node, "url"):
                actions.save_local(self.local_ae.text().strip(), self.local_port.value())
            actions.save_node(node.name, node, replace=self.original or None)
        except DelineateError as exc:
            self._say(str(exc), True)
            return
        if getattr(node, "secret", ""):
            SECRETS[node.name] = node.secret
        else:
            SECRETS.pop(node.name, None)
        self.saved_name = node.name
        super().accept()

    def done(self, result: int) -> None:
        self.tasks.cancel()  # a test still running winds down on its own; nobody waits for it
        super().done(result)


def edit_node(parent, name: str = "", node=None) -> Optional[str]:
    """Show the node dialog; the saved node's name, or None."""
    dlg = NodeDialog(name, node, parent)  # owned by ``parent`` while a test may still run in its bar
    saved = dlg.saved_name if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted else None
    if not dlg.tasks.running:
        dlg.deleteLater()
    return saved
