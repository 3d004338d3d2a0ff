"""The status bar after each measurement reads that measurement: an ellipse on a PNG without a
pixel size says px², and RECIST axes from the panel replace the ellipse's message with their own."""
import numpy as np
import pytest
from PySide6 import QtCore

from core.labels import LabelMap, LabelTable
from core.measurements import text, values
from core.volume import Volume

pytest.importorskip("pytestqt")


def _pos(view, col, row):
    sr, sc = view.model.display.plane_spacing(view.view)
    return view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(col * sc, row * sr)))


def test_each_measurement_reports_its_own_value(qtbot, window):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    arr = np.full((1, 60, 80), 40, np.uint8)
    arr[0, 20:40, 25:50] = 200
    window.session.set_image(Volume.from_array(arr, spacing_known=False), "png without a pixel size")
    view = window.views["axial"]
    qtbot.wait(50)
    window.actions_by_id["measure_ellipse"].trigger()
    viewport = view.graphics.viewport()
    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, 10, 10))
    for t in np.linspace(0, 1, 5)[1:]:
        qtbot.mouseMove(viewport, pos=_pos(view, 10 + 30 * t, 10 + 20 * t))
        qtbot.wait(20)
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, pos=_pos(view, 40, 30))
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
