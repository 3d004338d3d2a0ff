"""A failed export in the GUI: an "Export failed" dialog with the reason, no file left behind, the
case still open."""
import numpy as np

from core.labels import LabelMap, LabelTable
from tests.gui.test_main_window import _open, ct_series, window  # noqa: F401 - fixtures


def test_failed_export_says_export_failed_and_leaves_nothing(qtbot, window, ct_series, tmp_path, monkeypatch):  # noqa: F811
    import formats.dicom.seg

    _open(qtbot, window, ct_series)
    arr = np.zeros(window.model.volume.geometry.shape_zyx, np.uint8)
    arr[8:14, 20:40, 25:45] = 1
    window.opener.set_labelmap(LabelMap(arr, window.model.volume.geometry, LabelTable.from_names(["organ"])))

    def broken(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(formats.dicom.seg, "write_seg", broken)
    out = tmp_path / "out"
    window.cases.export_case("seg", str(out / "case.dcm"), deidentify=True)
    qtbot.waitUntil(lambda: window._last_error is not None and not window.tasks.busy, timeout=60000)
    box = window._last_error
    assert "export failed" in box.windowTitle().lower() and "cannot open" not in box.windowTitle().lower()
    assert box.text().startswith("Export failed") and "No space left on device" in box.text()
    assert not out.exists() or list(out.rglob("*")) == []  # not one de-identified image copy left
    assert window.model.labelmap is not None and window.model.labelmap.array.sum() == arr.sum()
    box.close()
