"""Segment -> Join federated round: a site admin points this machine's store at a federation's
SuperLink; the SuperNode runs in the task bar (progress, Cancel) until the site has decided on the
federated model, then the decision is shown. The work is app.actions.federated.join."""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtWidgets


class FederatedDialog(QtWidgets.QDialog):
    def __init__(self, settings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Join a federated round")
        self.settings = settings
        form = QtWidgets.QFormLayout(self)
        form.addRow(QtWidgets.QLabel("Only model parameters and scalar metrics leave this machine; images, masks "
                                     "and case records stay in the store (docs/federated.md)."))
        self.superlink = QtWidgets.QLineEdit(str(settings.value("federated/superlink", "") or ""))
        self.superlink.setPlaceholderText("server.example.org:9093")
        self.ca = QtWidgets.QLineEdit(str(settings.value("federated/ca", "") or ""))
        browse = QtWidgets.QPushButton("…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.ca)
        row.addWidget(browse)
        self.insecure = QtWidgets.QCheckBox("No TLS (testing on one machine only)")
        self.store = QtWidgets.QLineEdit()
        self.store.setPlaceholderText("the default store")
        form.addRow("SuperLink (HOST:PORT)", self.superlink)
        form.addRow("CA certificate (PEM)", row)
        form.addRow("", self.insecure)
        form.addRow("Store", self.store)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "CA certificate", str(Path.home()), "PEM (*.pem *.crt)")
        if path:
            self.ca.setText(path)

    def values(self) -> dict:
        self.settings.setValue("federated/superlink", self.superlink.text().strip())
        self.settings.setValue("federated/ca", self.ca.text().strip())
        return {"superlink": self.superlink.text().strip(), "store": self.store.text().strip() or None,
                "ca": None if self.insecure.isChecked() else (Path(self.ca.text().strip()) if self.ca.text().strip()
                                                             else None),
                "insecure": self.insecure.isChecked()}


def join_federated_round(shell) -> None:
    """Ask, then run this site's SuperNode in the task bar until it has decided."""
    from app.actions import federated
    from core.errors import DelineateError

    dlg = FederatedDialog(shell.settings, shell.widget)
    if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
        return
    v = dlg.values()
    if v["ca"] is None and not v["insecure"]:
        shell.failed("federated round", DelineateError("choose the CA certificate that signed the server's, or "
                                                       "tick 'No TLS' to test on one machine"))
        return
    if v["ca"] is not None and not v["ca"].is_file():
        shell.failed("federated round", DelineateError(f"{v['ca']}: no such file"))
        return

    def done(_rc) -> None:
        QtWidgets.QMessageBox.information(shell.widget, "Federated round", "This site has decided on the federated "
                                          "model: see its card in the model list (promoted or kept, and why).")

    shell.run("Federated round", lambda p, c, _part: federated.join(v["superlink"], v["store"], ca=v["ca"], progress=p,
                                                                      cancel=c, until_done=True),
              done, "federated round")
