"""File > Open from PACS and Send to PACS in the real window under Xvfb, against a real Orthanc
(tests/pacs_server.py): search, series with thumbnails, retrieve and open, cancel halfway, a wrong
port, node configuration, and a SEG sent back that references its source series."""
import socket
import threading
import time

import numpy as np
import pydicom
import pytest
from PySide6 import QtCore

from app.actions import pacs as actions
from app.session import ImageOpened
from core.errors import Cancelled
from core.labels import Code, Label, LabelMap, LabelTable
from core.volume import Volume
from formats.dicom.write import write_series
from pacs import nodes
from pacs.nodes import DimseNode, LocalAE, WebNode
from pacs.query import Query
from tests.conftest import rotation
from tests.pacs_server import AE_TITLE, LOCAL_AE, PASSWORD, USER, Orthanc

pytest.importorskip("pytestqt")

N_SLICES = 16
PATIENT = "BROWSE-0001"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc holding a small CT series, and a settings file naming its DIMSE and DICOMweb faces."""
    tmp = tmp_path_factory.mktemp("pacs-gui")
    rng = np.random.default_rng(3)
    ct = Volume.from_array(rng.integers(-1000, 1500, size=(N_SLICES, 48, 40)).astype(np.int16),
                           spacing=(0.8, 0.9, 2.5), origin=(-12.5, 30.0, 95.0),
                           direction=rotation(0.05, 0.1, -0.1), modality="CT")
    files = write_series(ct, tmp / "upload", patient_name="Browse^Test", patient_id=PATIENT,
                         series_description="Browser CT")
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    with Orthanc() as server:  # raises with Orthanc's log when it cannot start
        config = tmp / "pacs.json"
        settings = nodes.Settings(local=LocalAE(LOCAL_AE, server.scp_port), path=config)
        settings.nodes["orthanc"] = DimseNode(AE_TITLE, "127.0.0.1", server.dicom_port, name="orthanc")
        settings.nodes["web"] = WebNode(server.url, "web", "basic", USER, "DELINEATE_TEST_GUI_PACS_PW")
        nodes.save(settings)
        assert actions.send("orthanc", [tmp / "upload"], config=config) == N_SLICES
        yield {"server": server, "config": config, "ct": ct, "study_uid": str(ds.StudyInstanceUID),
               "series_uid": str(ds.SeriesInstanceUID)}


@pytest.fixture
def window(qtbot, tmp_path, pacs, monkeypatch):
    from gui.app import make_app
    from gui.main_window import MainWindow

    monkeypatch.setenv("DELINEATE_PACS_NODES", str(pacs["config"]))
    monkeypatch.setenv("DELINEATE_PACS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DELINEATE_TEST_GUI_PACS_PW", PASSWORD)
    make_app()
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    if win.pacs.browser is not None:
        assert win.pacs.browser.wait(10000)


def _browser(win, node: str):
    win.pacs.open_browser()
    b = win.pacs.browser
    b.node_box.setCurrentIndex(b.node_box.findData(node))
    return b


def _search(qtbot, b, patient_id: str = PATIENT):
    b.patient_id.setText(patient_id)
    qtbot.mouseClick(b.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: b.series_table.rowCount() == 1, timeout=20000)


def _same_image(a: Volume, b: Volume) -> None:
    assert a.array.shape == b.array.shape and np.array_equal(a.array, b.array)
    np.testing.assert_allclose(a.geometry.spacing, b.geometry.spacing, atol=1e-6)
    np.testing.assert_allclose(a.geometry.origin, b.geometry.origin, atol=1e-4)
    np.testing.assert_allclose(a.geometry.direction, b.geometry.direction, atol=1e-6)


@pytest.mark.parametrize("node", ["orthanc", "web"])
def test_search_list_series_retrieve_and_open(qtbot, window, pacs, node, tmp_path):
    b = _browser(window, node)
    seen = []
    window.session.subscribe(ImageOpened, lambda e: seen.append((e.preview, e.volume.array.shape)))
    _search(qtbot, b)
    assert b.study_table.rowCount() == 1 and b.study_table.item(0, 0).text() == PATIENT
    assert b.studies[0].study_uid == pacs["study_uid"]
    assert [b.series_table.item(0, c).text() for c in (2, 3, 4)] == ["CT", "Browser CT", str(N_SLICES)]
    qtbot.waitUntil(lambda: b.thumbnails_shown() == 1, timeout=20000)
    assert b.open_button.isEnabled()
    with qtbot.waitSignal(window.loaded, timeout=60000):
        qtbot.mouseClick(b.open_button, QtCore.Qt.MouseButton.LeftButton)
    assert not b.isVisible() and b.retrieve_error is None
    assert b.retrieved.parent == tmp_path / "cache" and len(list(b.retrieved.iterdir())) == N_SLICES
    _same_image(window.session.volume, pacs["ct"])
    assert not window.session.previewing and window.session.source == str(b.retrieved)
    # the first instance received was on screen before the series was complete
    assert seen[0] == (True, (1, 48, 40)) and seen[-1] == (False, (N_SLICES, 48, 40))
    assert "1 series" in b.cache_label.text()
    b.empty_cache()
    assert "0 series" in b.cache_label.text() and list((tmp_path / "cache").iterdir()) == []


def test_cancel_halfway_opens_nothing_and_leaves_nothing_in_the_cache(qtbot, window, pacs, monkeypatch, tmp_path):
    """The transfer is held after a few instances (the real retrieve, its progress paused in the
    network thread) until the status bar's Cancel is clicked, so the cancel lands halfway."""
    real = actions.retrieve
    halfway, received = threading.Event(), []

    def held(*args, progress, cancel, **kw):
        def progress_then_hold(fraction, message=""):
            received.append(message)
            if len(received) == N_SLICES // 2:
                halfway.set()
                deadline = time.monotonic() + 15
                while not cancel.cancelled and time.monotonic() < deadline:
                    time.sleep(0.01)
            progress(fraction, message)
        return real(*args, progress=progress_then_hold, cancel=cancel, **kw)

    monkeypatch.setattr(actions, "retrieve", held)
    b = _browser(window, "orthanc")
    _search(qtbot, b)
    b.open_selected()
    qtbot.waitUntil(halfway.is_set, timeout=20000)
    assert window.tasks.isVisible() and window.tasks.cancel_button.isVisible()
    qtbot.mouseClick(window.tasks.cancel_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: b.retrieve_error is not None, timeout=20000)
    assert isinstance(b.retrieve_error, Cancelled) and b.retrieved is None
    assert N_SLICES // 2 <= len(received) < N_SLICES
    qtbot.wait(300)  # anything queued after the cancel would land now
    assert window.session.volume is None and not window.session.previewing  # the first slice shown is gone
    assert not window.tasks.busy
    assert list((tmp_path / "cache").iterdir()) == []  # neither the series nor its temp folder
    assert "cancelled" in window.statusBar().currentMessage()


def test_a_node_added_in_the_dialog_with_a_wrong_port_fails_fast_and_clearly(qtbot, window, pacs):
    from gui.pacs_node_dialog import NodeDialog

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    b = _browser(window, "orthanc")
    dlg = NodeDialog(parent=b)
    qtbot.addWidget(dlg)
    dlg.name.setText("wrong port")
    dlg.ae.setText(AE_TITLE)
    dlg.host.setText("127.0.0.1")
    assert (dlg.local_ae.text(), dlg.local_port.value()) == (LOCAL_AE, pacs["server"].scp_port)
    dlg.port.setValue(pacs["server"].dicom_port)
    dlg.test()
    qtbot.waitUntil(lambda: "answered" in dlg.message.text(), timeout=10000)
    dlg.port.setValue(port)
    dlg.test()
    qtbot.waitUntil(lambda: "refused" in dlg.message.text(), timeout=10000)
    dlg.accept()
    saved = nodes.load(pacs["config"])
    assert saved.nodes["wrong port"].port == port and saved.local == LocalAE(LOCAL_AE, pacs["server"].scp_port)
    b.reload_nodes("wrong port")
    assert b.node_name() == "wrong port"
    b.patient_id.setText(PATIENT)
    t0 = time.perf_counter()
    qtbot.mouseClick(b.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "connection refused" in b.message.text(), timeout=10000)
    assert time.perf_counter() - t0 < 10
    assert b.message.text().startswith(f"{AE_TITLE}@127.0.0.1:{port}: connection refused on port {port}")
    assert "Traceback" not in b.message.text() and b.study_table.rowCount() == 0
    actions.remove_node("wrong port")


def test_send_to_pacs_stores_a_seg_that_references_the_source_series(qtbot, window, pacs):
    b = _browser(window, "orthanc")
    _search(qtbot, b)
    with qtbot.waitSignal(window.loaded, timeout=60000):
        b.open_selected()
    vol = window.session.volume
    arr = np.zeros(vol.geometry.shape_zyx, np.uint8)
    arr[4:12, 10:30, 8:30] = 1
    table = LabelTable((Label(1, "Liver", (220, 120, 80), Code("SCT", "123037004", "Anatomical Structure"),
                              Code("SCT", "10200004", "Liver")),))
    window.session.set_labelmap(LabelMap(arr, vol.geometry, table))

    def fill_and_accept():
        dlg = window.pacs.send_dialog_shown
        dlg.node_box.setCurrentIndex(dlg.node_box.findData("orthanc"))
        dlg.what.setCurrentIndex(dlg.what.findData("seg"))
        dlg.deidentify.setChecked(False)
        dlg.accept()

    QtCore.QTimer.singleShot(200, fill_and_accept)
    with qtbot.waitSignal(window.pacs.sent, timeout=60000):
        window.pacs.send_dialog()
    assert window.pacs.last_sent == 1
    cfg = pacs["config"]
    (seg,) = actions.find("orthanc", Query(study_uid=pacs["study_uid"], modality="SEG"), "series", config=cfg)
    folder = actions.retrieve("orthanc", seg.study_uid, seg.series_uid, config=cfg)
    (got,) = [pydicom.dcmread(p) for p in folder.iterdir()]
    assert got.SOPClassUID == pydicom.uid.SegmentationStorage
    assert got.ReferencedSeriesSequence[0].SeriesInstanceUID == pacs["series_uid"]
    assert len(got.ReferencedSeriesSequence[0].ReferencedInstanceSequence) == N_SLICES
    assert int(np.count_nonzero(got.pixel_array)) == int(arr.sum())


def test_a_refused_password_is_one_line_naming_the_server(qtbot, window, pacs, monkeypatch):
    monkeypatch.setenv("DELINEATE_TEST_GUI_PACS_PW", "not-the-password")
    b = _browser(window, "web")
    b.patient_id.setText(PATIENT)
    t0 = time.perf_counter()
    qtbot.mouseClick(b.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "HTTP 401" in b.message.text(), timeout=10000)
    assert time.perf_counter() - t0 < 10
    assert b.message.text() == (f"{pacs['server'].url}: QIDO-RS: HTTP 401: authentication failed: check the user "
                                "name and the password or token")
    assert b.study_table.rowCount() == 0
