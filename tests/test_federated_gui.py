"""Segment -> Join federated round: the dialog asks for the SuperLink, the CA (or no TLS for a test
on one machine) and the store, and remembers the server for next time."""
import pytest

pytest.importorskip("pytestqt")


def test_the_dialog_returns_what_the_site_admin_entered_and_remembers_the_server(qtbot, tmp_path):
    from PySide6 import QtCore

    from gui.federated_dialog import FederatedDialog

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    dlg = FederatedDialog(settings)
    qtbot.addWidget(dlg)
    dlg.superlink.setText(" fl.example.org:9093 ")
    dlg.ca.setText(str(tmp_path / "ca.pem"))
    dlg.store.setText(str(tmp_path / "store"))
    v = dlg.values()
    assert v == {"superlink": "fl.example.org:9093", "store": str(tmp_path / "store"), "ca": tmp_path / "ca.pem",
                 "insecure": False}
    dlg.insecure.setChecked(True)
    dlg.store.setText("")
    assert dlg.values()["ca"] is None and dlg.values()["store"] is None  # no TLS: no CA; the default store
    again = FederatedDialog(settings)
    qtbot.addWidget(again)
    assert again.superlink.text() == "fl.example.org:9093" and again.ca.text() == str(tmp_path / "ca.pem")


def test_the_window_offers_it_in_the_segment_menu(qtbot, tmp_path):
    from PySide6 import QtCore

    from gui.app import make_app
    from gui.main_window import MainWindow

    make_app()
    win = MainWindow(QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Segment")
    assert "&Join federated round…" in [a.text() for a in menu.actions()]
