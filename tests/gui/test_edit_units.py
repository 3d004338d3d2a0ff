"""The Edit panel speaks the image's units: mm and ml on a volume, mm² on an image with a pixel
size, px where the file gives none (a PNG) - and "Remove islands" reads its amount in that unit."""
import numpy as np
import pytest

from core.labels import LabelMap, LabelTable
from core.volume import Volume

pytest.importorskip("pytestqt")


def _show(qtbot, window, vol):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    window.session.set_image(vol, "units phantom")
    lab = np.zeros(vol.geometry.shape_zyx, np.uint8)
    window.session.set_labelmap(LabelMap(lab, vol.geometry, LabelTable.from_names(["Lesion"])))
    qtbot.wait(20)
    return window.edit_panel


def _texts(panel):
    return (panel.radius.suffix(), panel._amount_label.text(), panel.op_buttons["Remove islands"].text(),
            panel.op_buttons["Grow by mm"].text())


def _remove_islands(qtbot, window, panel, amount):
    panel.label.setCurrentIndex(panel.label.findData(1))
    panel.amount.setValue(amount)
    panel.op_buttons["Remove islands"].click()
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)
    return window.model.labelmap.array


def test_pixel_only_image_in_px(qtbot, window):
    vol = Volume.from_array(np.full((1, 40, 50), 50, np.uint8), spacing_known=False, orientation_known=False)
    panel = _show(qtbot, window, vol)
    assert _texts(panel) == (" px", "Amount (px / px²)", "Remove islands < px²", "Grow by px")
    lab = window.model.labelmap.array
    lab[0, 2:4, 2:4] = 1  # 4 px
    lab[0, 20:22, 20:23] = 1  # 6 px
    lab[0, 30:38, 30:40] = 1  # 80 px
    out = _remove_islands(qtbot, window, panel, 5)
    assert out[0, 2:4, 2:4].sum() == 0 and out.sum() == 86  # only the 4-px piece went
    assert "4 voxels changed" in window.statusBar().currentMessage()


def test_planar_image_with_a_pixel_size_in_mm2(qtbot, window):
    vol = Volume.from_array(np.full((1, 40, 50), 50, np.uint8), spacing=(0.5, 0.5, 1.0), orientation_known=False)
    panel = _show(qtbot, window, vol)
    assert _texts(panel) == (" mm", "Amount (mm / mm²)", "Remove islands < mm²", "Grow by mm")
    lab = window.model.labelmap.array
    lab[0, 2:4, 2:6] = 1  # 8 px = 2 mm²
    lab[0, 20:24, 20:24] = 1  # 16 px = 4 mm²
    out = _remove_islands(qtbot, window, panel, 3.0)
    assert out.sum() == 16 and out[0, 20:24, 20:24].all()


def test_volume_in_mm_and_ml(qtbot, window):
    vol = Volume.from_array(np.zeros((6, 30, 30), np.int16), spacing=(2.0, 2.0, 2.5), modality="CT")
    panel = _show(qtbot, window, vol)
    assert _texts(panel) == (" mm", "Amount (mm / ml)", "Remove islands < ml", "Grow by mm")
    lab = window.model.labelmap.array
    lab[1:3, 2:12, 2:12] = 1  # 200 voxels x 10 mm3 = 2 ml
    lab[1:2, 20:25, 20:25] = 1  # 25 voxels = 0.25 ml
    out = _remove_islands(qtbot, window, panel, 0.5)
    assert out.sum() == 200
