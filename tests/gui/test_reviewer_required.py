"""A correction is stored with its reviewer of record: cancelling the name box cancels the save
(the tryout's Approve went on and stored an approved case with no reviewer)."""
import numpy as np
from PySide6 import QtWidgets

from core.labels import LabelMap, LabelTable
from core.volume import Volume


def test_cancelling_the_reviewer_box_saves_nothing_and_says_why(qtbot, window, tmp_path, monkeypatch):
    window.settings.setValue("reviewer", "")
    asked = []
    monkeypatch.setattr(QtWidgets.QInputDialog, "getText",
                        staticmethod(lambda *a, **k: (asked.append(a[1]), ("", False))[1]))
    vol = Volume.from_array(np.zeros((4, 16, 16), np.int16), spacing=(1.0, 1.0, 2.0), modality="CT")
    window.session.set_image(vol, "phantom")
    labels = np.zeros((4, 16, 16), np.uint8)
    labels[1:3, 4:9, 4:9] = 1
    window.session.set_labelmap(LabelMap(labels, vol.geometry, LabelTable.from_names(["lesion"])))
    window.cases.save_correction("approved", root=tmp_path / "store")
    QtWidgets.QApplication.instance().processEvents()
    assert asked == ["Reviewer"]
    assert not (tmp_path / "store").exists() and window.session.store_case is None
    assert "Not saved: a correction needs a reviewer of record" in window.statusBar().currentMessage()
