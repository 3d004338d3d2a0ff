"""Text and the scale bar painted over a slice view, readable and never clipped: labels are drawn
with a dark outline (readable over bright bone and dark air alike, as Slicer's corner text is), and
the scale bar's label gets the width its text needs, kept inside the view; a view too narrow for
it gets no scale bar rather than a cut one. Pure layout plus QPainter calls, for gui.slice_view."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from PySide6 import QtCore, QtGui

MARGIN = 4  # pixels kept free at the view's edges


def nice_length(mm: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``mm``."""
    if mm <= 0:
        return 1.0
    base = 10 ** math.floor(math.log10(mm))
    return float(next(m * base for m in (5, 2, 1) if m * base <= mm * (1 + 1e-9)))


def length_text(length: float, pixels: bool = False) -> str:
    """A length in mm as mm or cm; ``pixels``: the image gives no pixel size, the length is in pixels."""
    return f"{length:g} px" if pixels else f"{length:g} mm" if length < 10 else f"{length / 10:g} cm"


@dataclass(frozen=True)
class ScaleBar:
    x0: int  # the bar, from x0 to x0 + length_px at height y
    y: int
    length_px: int
    text: str
    text_rect: QtCore.QRect  # as wide as the text, inside the view


def scale_bar(width: int, height: int, mm_per_px: float, metrics: QtGui.QFontMetrics,
              fraction: float = 0.2, pixels: bool = False) -> Optional[ScaleBar]:
    """A bar about ``fraction`` of the view wide, bottom right, with its length above it; None when
    the view is too small to show bar and text whole. ``mm_per_px``: scene units (mm, or image
    pixels when ``pixels``) per screen pixel."""
    if mm_per_px <= 0 or width <= 0 or height <= 0:
        return None
    mm = nice_length(mm_per_px * width * fraction)
    px = int(round(mm / mm_per_px))
    text = length_text(mm, pixels)
    tw, th = metrics.horizontalAdvance(text) + 2, metrics.height()
    if px < 4 or tw + 2 * MARGIN > width or th + 12 + MARGIN > height:
        return None
    x0 = max(MARGIN, width - px - 24)
    y = height - 8 - MARGIN
    left = min(max(MARGIN, x0 + px // 2 - tw // 2), width - MARGIN - tw)  # centred on the bar, kept inside
    return ScaleBar(x0, y, px, text, QtCore.QRect(left, y - 4 - th, tw, th))


def draw_outlined(painter: QtGui.QPainter, rect: QtCore.QRect, flags, text: str, colour: QtGui.QColor) -> None:
    """``text`` in ``colour`` with a one-pixel dark outline around it."""
    painter.save()
    painter.setPen(QtGui.QColor(0, 0, 0, 220))
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)):
        painter.drawText(rect.translated(dx, dy), flags, text)
    painter.setPen(colour)
    painter.drawText(rect, flags, text)
    painter.restore()


def draw_scale_bar(painter: QtGui.QPainter, bar: ScaleBar, colour: QtGui.QColor) -> None:
    painter.save()
    for pen in (QtGui.QPen(QtGui.QColor(0, 0, 0, 200), 4), QtGui.QPen(colour, 2)):  # outline, then the bar
        painter.setPen(pen)
        x1 = bar.x0 + bar.length_px
        painter.drawLine(bar.x0, bar.y, x1, bar.y)
        painter.drawLine(bar.x0, bar.y - 4, bar.x0, bar.y + 4)
        painter.drawLine(x1, bar.y - 4, x1, bar.y + 4)
    painter.restore()
    draw_outlined(painter, bar.text_rect, QtCore.Qt.AlignmentFlag.AlignCenter, bar.text, colour)
