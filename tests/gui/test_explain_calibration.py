"""The model dialog shows the card's calibration: ECE, the correlation of case uncertainty with Dice
and the reliability diagram (or how to measure it)."""
import pytest

pytest.importorskip("pytestqt")


def test_model_dialog_shows_calibration(qtbot):
    from PySide6 import QtCore, QtGui

    from gui.app import make_app
    from gui.calibration_view import RESOURCE
    from gui.model_dialog import ModelDialog
    from inference.registry import Registry

    make_app()
    card = Registry().get("us-lesion-2d")
    card.calibration = None
    dialog = ModelDialog([card], [])
    qtbot.addWidget(dialog)
    assert "calibrate-confidence us-lesion-2d" in dialog.details.toPlainText()
    card.calibration = {"ece": 0.042, "ece_all_voxels": 0.001, "bins": 10, "confidence": [0.05 + i / 10 for i in range(10)],
                        "accuracy": [i / 10 for i in range(10)], "voxels": [0, 0, 0, 0, 0, 9, 9, 9, 9, 90],
                        "uncertainty_dice": [[0.1, 0.9], [0.2, 0.7], [0.3, 0.8]], "spearman_uncertainty_dice": -0.5,
                        "measured_on": "3 held-out generated cases"}
    dialog._show(card, {})
    text = dialog.details.toPlainText()
    assert "ECE 0.042" in text and "Spearman -0.50 over 3 cases" in text
    image = dialog.details.document().resource(QtGui.QTextDocument.ResourceType.ImageResource, QtCore.QUrl(RESOURCE))
    assert isinstance(image, QtGui.QImage) and not image.isNull()
    colours = {image.pixelColor(x, y).name() for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}
    assert "#4c78a8" in colours  # the accuracy bars are drawn
