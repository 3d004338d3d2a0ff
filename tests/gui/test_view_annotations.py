"""Slice-view annotations (issue 20 item 8): the scale bar's label is never clipped, however narrow
the view (a view too small gets no bar), and labels carry a dark outline that makes them readable
over white as over black."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")


def test_the_scale_bar_label_fits_the_view_whatever_its_width(qapp):
    from PySide6 import QtGui

    from gui.view_annotations import MARGIN, nice_length, scale_bar

    metrics = QtGui.QFontMetrics(QtGui.QFont())
    shown = 0
    for width in range(20, 900, 7):
        for mm_per_px in (0.03, 0.2, 0.7, 1.0, 2.5, 9.0):
            bar = scale_bar(width, 300, mm_per_px, metrics)
            if bar is None:
                continue
            shown += 1
            r = bar.text_rect
            assert r.width() >= metrics.horizontalAdvance(bar.text) and MARGIN <= r.left()
            assert r.right() < width - MARGIN + 1 and r.top() >= 0, (width, mm_per_px, bar)
            assert MARGIN <= bar.x0 and bar.x0 + bar.length_px <= width
            mm = float(bar.text.split()[0]) * (10 if bar.text.endswith("cm") else 1)
            assert abs(bar.length_px * mm_per_px - mm) <= mm_per_px  # the bar is as long as it says
    assert shown > 500  # most views get one
    assert scale_bar(24, 300, 1.0, metrics) is None  # narrower than its text: none, not a cut one
    assert [nice_length(v) for v in (0.7, 3, 19, 99, 120)] == [0.5, 2, 10, 50, 100]
    assert scale_bar(400, 300, 0.5, metrics, pixels=True).text == "20 px"  # no pixel size in the file


@pytest.mark.parametrize("background", ["white", "black"])
def test_outlined_labels_are_readable_on_any_background(qapp, background):
    from PySide6 import QtCore, QtGui

    from gui.view_annotations import draw_outlined

    image = QtGui.QImage(120, 30, QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor(background))
    p = QtGui.QPainter(image)
    draw_outlined(p, QtCore.QRect(0, 0, 120, 30), QtCore.Qt.AlignmentFlag.AlignCenter, "Axial 12/40",
                  QtGui.QColor("#ffff80"))
    p.end()
    ptr = image.constBits()
    rgb = np.frombuffer(ptr, np.uint8).reshape(30, 120, 4)[..., 2::-1].astype(int)  # BGRA in memory
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 170)
    dark = rgb.sum(-1) < 120
    assert yellow.sum() > 30  # the text
    if background == "white":  # the outline: dark pixels right beside the yellow ones
        near = np.zeros_like(yellow)
        near[1:, :] |= yellow[:-1, :]
        near[:, 1:] |= yellow[:, :-1]
        assert (dark & near).sum() > 20
