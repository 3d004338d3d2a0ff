"""The status bar after each measurement reads that measurement: an ellipse on a PNG without a
pixel size says px², and RECIST axes from the panel replace the ellipse's message with their own."""
import numpy as np
import pytest

from core.labels import LabelMap, LabelTable
from core.measurements import text, values
from core.volume import Volume

pytest.importorskip("pytestqt")

from tests.gui.test_measure_tool import _drag  # noqa: E402


def test_each_measurement_reports_its_own_value(qtbot, window):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    arr = np.full((1, 60, 80), 40, np.uint8)
    arr[0, 20:40, 25:50] = 200
    window.session.set_image(Volume.from_array(arr, spacing_known=False), "png without a pixel size")
    view = window.views["axial"]
    qtbot.wait(50)
    window.actions_by_id["measure_ellipse"].trigger()
    _drag(qtbot, view, (10, 10), (40, 30))
    ellipse = window.session.measurements[-1]
    shown = window.statusBar().currentMessage()
    assert ellipse.kind == "ellipse" and " px²" in shown and "mean" in shown

    lm = LabelMap.empty_like(window.session.volume.geometry, LabelTable.from_names(["Lesion"]))
    lm.array[0, 20:40, 25:50] = 1
    window.session.set_labelmap(lm)
    window.measure_panel.recist_button.click()
    rec = window.session.measurements[-1]
    shown = window.statusBar().currentMessage()
    assert rec.kind == "recist" and "recist" in shown
    assert text(rec, values(rec, window.session.volume)) in shown and "px²" not in shown
