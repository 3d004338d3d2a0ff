"""A model's calibration as the model dialog shows it: the reliability diagram drawn with Qt (no
plotting library in the window) and a line of numbers, from the card's ``calibration`` field
(inference.xai_calibration)."""
from __future__ import annotations

from PySide6 import QtCore, QtGui

RESOURCE = "calibration:reliability"


def calibration_text(card) -> str:
    cal = card.calibration
    if not cal:
        return ("<p><b>Calibration:</b> not measured (<code>main.py calibrate-confidence "
                f"{card.id}</code>).</p>")
    rho = cal.get("spearman_uncertainty_dice")
    return (f"<p><b>Calibration</b> ({cal.get('measured_on', '')}): ECE {cal['ece']:.3f}"
            + (f" ({cal['ece_all_voxels']:.4f} over every voxel)" if "ece_all_voxels" in cal else "")
            + "; case uncertainty vs Dice: Spearman " + ("n/a" if rho is None else f"{rho:.2f}")
            + f" over {len(cal.get('uncertainty_dice', []))} cases.<br>"
            f"<img src=\"{RESOURCE}\"></p>")


def reliability_image(cal: dict, size: int = 220) -> QtGui.QImage:
    """Bars: fraction correct per confidence bin; dashed diagonal: perfect calibration."""
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor("white"))
    p = QtGui.QPainter(image)
    m = 28  # margin for the axes' labels
    w = size - m - 8
    x0, y0 = m, size - m  # the plot's origin (bottom left)
    n = cal["bins"]
    for i, (acc, count) in enumerate(zip(cal["accuracy"], cal["voxels"])):
        if count:
            h = int(round(acc * w))
            p.fillRect(QtCore.QRect(x0 + int(i * w / n), y0 - h, int(w / n) - 1, h), QtGui.QColor("#4c78a8"))
    pen = QtGui.QPen(QtGui.QColor("#444"), 1, QtCore.Qt.PenStyle.DashLine)
    p.setPen(pen)
    p.drawLine(x0, y0, x0 + w, y0 - w)
    p.setPen(QtGui.QColor("black"))
    p.drawRect(x0, y0 - w, w, w)
    f = p.font()
    f.setPointSize(7)
    p.setFont(f)
    for v in (0, 0.5, 1):
        p.drawText(QtCore.QRect(x0 + int(v * w) - 12, y0 + 2, 24, 12), QtCore.Qt.AlignmentFlag.AlignHCenter, f"{v:g}")
        p.drawText(QtCore.QRect(0, y0 - int(v * w) - 6, m - 3, 12), QtCore.Qt.AlignmentFlag.AlignRight, f"{v:g}")
    p.drawText(QtCore.QRect(x0, y0 + 13, w, 12), QtCore.Qt.AlignmentFlag.AlignHCenter, "confidence")
    p.save()
    p.translate(8, y0 - w // 2)
    p.rotate(-90)
    p.drawText(QtCore.QRect(-40, -8, 80, 12), QtCore.Qt.AlignmentFlag.AlignHCenter, "correct")
    p.restore()
    p.end()
    return image


def register(document: QtGui.QTextDocument, card) -> None:
    """Give ``document`` the card's diagram before its HTML (from calibration_text) is set."""
    if card.calibration:
        document.addResource(QtGui.QTextDocument.ResourceType.ImageResource, QtCore.QUrl(RESOURCE),
                             reliability_image(card.calibration))
