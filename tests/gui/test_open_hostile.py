"""With a case open and edited, opening a file that used to abort the whole app (SIGABRT in GDCM
or ITK) shows an error dialog naming it, and the case and its edits stay."""
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from core.labels import Label, LabelMap, LabelTable
from tests.fuzz_corpus import write_meta
from tests.gui.test_main_window import _ct_phantom, _open, window  # noqa: F401 - fixture
from formats.dicom.write import write_series

pytest.importorskip("pytestqt")


def _j2k_ct_saying_ybr(folder):
    ds = pydicom.dcmread(get_testdata_file("693_J2KR.dcm"))  # a JPEG 2000 CT slice
    ds.PhotometricInterpretation = "YBR_RCT"  # GDCM threw an uncaught gdcm::Exception: abort
    p = folder / "j2k_ybr_ct.dcm"
    ds.save_as(p)
    return p


def _abort_in_child(path, progress=None):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGABRT)


def _open_case_with_an_edit(qtbot, win, tmp_path):
    write_series(_ct_phantom(), tmp_path / "ct")
    _open(qtbot, win, tmp_path / "ct")
    vol = win.model.volume
    lab = np.zeros(vol.geometry.shape_zyx, np.uint8)
    lab[10, 20:30, 20:40] = 1
    win.opener.set_labelmap(LabelMap(lab, vol.geometry, LabelTable((Label(1, "lesion", (255, 0, 0)),))))
    return vol, win.model.labelmap


def _expect_error_and_case_kept(qtbot, win, name, vol, labels, says=""):
    qtbot.waitUntil(lambda: win._last_error is not None and not win.tasks.busy, timeout=60000)
    box = win._last_error
    assert name in box.text() and says in box.text() and "Traceback" not in box.text()
    assert box.windowTitle().endswith("cannot open")
    assert win.model.volume is vol and win.model.labelmap is labels
    assert int(win.model.labelmap.array.sum()) == 200
    box.close()
    win._last_error = None


def test_files_that_crashed_readers_show_an_error_and_keep_the_open_case(qtbot, window, tmp_path):
    vol, labels = _open_case_with_an_edit(qtbot, window, tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    for path in (_j2k_ct_saying_ybr(bad),
                 write_meta(bad, "ndims99_raw", {"NDims": "99"}),
                 write_meta(bad, "ndims99_zlib", {"NDims": "99"}, compressed=True)):
        window.opener.open_path(str(path))
        _expect_error_and_case_kept(qtbot, window, path.name, vol, labels)


def test_a_reader_killed_by_a_signal_costs_an_error_not_the_app(qtbot, window, tmp_path):
    """The sandbox itself, from the GUI's worker thread (forkserver): a real SIGABRT in the reader."""
    from formats import sandbox

    vol, labels = _open_case_with_an_edit(qtbot, window, tmp_path)
    path = str(tmp_path / "crasher.mha")
    window.opener._load(path, lambda p, c, part: sandbox.call(path, _abort_in_child, path, progress=p, cancel=c))
    _expect_error_and_case_kept(qtbot, window, "crasher.mha", vol, labels, says="crashed (signal 6, SIGABRT)")
    window.opener.open_path(str(tmp_path / "ct"))  # and opening still works afterwards
    qtbot.waitUntil(lambda: window.model.volume is not vol and not window.tasks.busy, timeout=60000)
    assert window.model.volume.modality == "CT"
