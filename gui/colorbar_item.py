"""The colour bar of each heat map shown, painted over a slice view: the map's name, its colour
scale with the range at either end (dimmed below the threshold, where the view shows nothing) and
the first sentence of what it means. A view showing a map always says what the colours are, also
in screenshots (its viewport paints it after the scene, so ``grab`` includes it)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

BAR_WIDTH = 150
MAX_BARS = 3  # stacked maps: one bar each, newest on top


def colorbar_image(heat, width: int = 256, height: int = 14) -> QtGui.QImage:
    """The map's colour scale from its minimum (left) to its maximum (right), dimmed below the
    threshold where the views show nothing."""
    colors = pg.colormap.get(heat.colormap).getLookupTable(nPts=256, alpha=False)[:, :3].astype(np.float32)
    codes = np.linspace(0, 255, width).round().astype(int)
    row = colors[codes]
    hidden = np.array([heat.value_of(c) < heat.threshold for c in codes])
    row[hidden] = row[hidden] * 0.25 + 96
    rgb = np.ascontiguousarray(np.repeat(row[None].clip(0, 255).astype(np.uint8), height, axis=0))
    image = QtGui.QImage(rgb.data, width, height, 3 * width, QtGui.QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: rgb is freed when this returns


def shown_maps(model) -> list:
    """The heat maps a view draws now (visible, not faded out), newest first."""
    return [h for h in reversed(model.heatmaps) if h.visible and h.opacity > 0][:MAX_BARS]


BAR_HEIGHT, LINE, MEANING_LINES = 42, 12, 4  # name, scale and numbers; each line of the meaning


def _small_font() -> QtGui.QFont:
    f = QtGui.QFont()
    f.setPointSize(8)
    return f


def meaning_lines(meaning: str) -> list[str]:
    """The meaning's first sentence wrapped to the bar's width, at most MEANING_LINES lines (the last
    elided): it used to be one elided line ("Normalised predictive en...")."""
    if not meaning:
        return []
    metrics = QtGui.QFontMetrics(_small_font())
    lines, line = [], ""
    for word in first_sentence(meaning).split():
        trial = f"{line} {word}".strip()
        if line and metrics.horizontalAdvance(trial) > BAR_WIDTH:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    if len(lines) > MEANING_LINES:
        rest = " ".join(lines[MEANING_LINES - 1:])
        lines = lines[:MEANING_LINES - 1] + [metrics.elidedText(rest, QtCore.Qt.TextElideMode.ElideRight, BAR_WIDTH)]
    return lines


def first_sentence(text: str) -> str:
    head = text.split(". ")[0].strip()
    return head if head.endswith(".") else head + "."


def _number(v: float) -> str:
    return f"{v:.3g}"


class HeatBar:
    """Painted by the view's viewport over its bottom-left corner, after the scene (as a transparent
    widget over the view it made Qt compose every repaint of the view once more)."""

    def __init__(self, view) -> None:
        self.view = view
        self._cache: dict = {}  # id(heat) -> (what the bar shows, its image)
        # what the last paint drew: (what every bar showed, where), (the bars' bounding rectangle,
        # [(top left, image)]); a repaint of the same bars blends them without recomputing their
        # boxes and keys in Qt calls
        self._placed_key = None
        self._placed: tuple = ()
        view.model.subscribe("heatmaps", self.update)
        view.model.subscribe("image", self.update)

    def update(self) -> None:
        self.view.graphics.viewport().update()

    def boxes(self) -> list[QtCore.QRect]:
        """Where each bar's box is painted (for tests and layout): bottom-left, stacked upwards, each
        as tall as its meaning's lines need (wrapped, at most MEANING_LINES)."""
        h = self.view.graphics.viewport().height()
        out, bottom = [], h - 30
        for heat in shown_maps(self.view.model):
            height = BAR_HEIGHT + LINE * len(meaning_lines(heat.meaning))
            out.append(QtCore.QRect(6, bottom - height - 4, BAR_WIDTH + 12, height))
            bottom -= height + 4
        return out

    def paint(self, p: QtGui.QPainter, exposed: QtCore.QRectF) -> None:
        """Onto ``p`` in viewport pixels; nothing when ``exposed`` (what Qt repaints) misses the bars."""
        model = self.view.model
        if model.display is None:
            return
        maps = shown_maps(model)
        if not maps:
            return
        viewport = self.view.graphics.viewport()
        placed_key = (viewport.height(), viewport.devicePixelRatioF(),
                      [(id(h), h.name, h.colormap, h.vmin, h.vmax, h.threshold, h.meaning) for h in maps])
        if placed_key != self._placed_key:
            self._placed_key, self._placed = placed_key, self._place(maps, placed_key[1])
        bounds, stamps = self._placed
        # (drawn whole when any of it is exposed: what falls outside the exposed region is clipped)
        if exposed.intersects(bounds):
            for point, image in stamps:
                p.drawImage(point, image)

    def _place(self, maps: list, dpr: float) -> tuple:
        boxes = self.boxes()
        kept, stamps, bounds = {}, [], QtCore.QRectF()
        for heat, box in zip(maps, boxes):
            key = (heat.name, heat.colormap, heat.vmin, heat.vmax, heat.threshold, heat.meaning, box.size().toTuple(),
                   dpr)
            cached = self._cache.get(id(heat))
            image = cached[1] if cached is not None and cached[0] == key else _bar_image(heat, box.size(), dpr)
            kept[id(heat)] = (key, image)
            stamps.append((box.topLeft(), image))
            bounds = bounds.united(QtCore.QRectF(box))
        self._cache = kept  # bars of maps no longer shown are dropped
        return bounds, stamps


def _bar_image(heat, size: QtCore.QSize, dpr: float) -> QtGui.QImage:
    """One map's bar box, drawn once and blended on every repaint after (a slice change repaints each
    view; laying out its texts and colour scale each time cost ~0.7 ms a view)."""
    image = QtGui.QImage(size * dpr, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(dpr)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(image)
    f = _small_font()
    p.setFont(f)
    metrics = QtGui.QFontMetrics(f)
    p.fillRect(QtCore.QRect(QtCore.QPoint(0, 0), size), QtGui.QColor(0, 0, 0, 150))
    x, y = 6, 3
    p.setPen(QtGui.QColor("#f0f0f0"))
    p.drawText(QtCore.QRect(x, y, BAR_WIDTH, 13), QtCore.Qt.AlignmentFlag.AlignLeft,
               metrics.elidedText(heat.name, QtCore.Qt.TextElideMode.ElideRight, BAR_WIDTH))
    p.drawImage(QtCore.QRect(x, y + 15, BAR_WIDTH, 9), colorbar_image(heat, BAR_WIDTH, 9))
    p.drawText(QtCore.QRect(x, y + 25, BAR_WIDTH, 12), QtCore.Qt.AlignmentFlag.AlignLeft, _number(heat.vmin))
    p.drawText(QtCore.QRect(x, y + 25, BAR_WIDTH, 12), QtCore.Qt.AlignmentFlag.AlignRight, _number(heat.vmax))
    if heat.threshold > heat.vmin:
        tx = x + int(round((heat.threshold - heat.vmin) / (heat.vmax - heat.vmin) * BAR_WIDTH))
        p.drawLine(tx, y + 13, tx, y + 25)
        p.drawText(QtCore.QRect(x, y + 25, BAR_WIDTH, 12), QtCore.Qt.AlignmentFlag.AlignHCenter,
                   f"shown from {_number(heat.threshold)}")
    p.setPen(QtGui.QColor("#c8c8c8"))
    for i, line in enumerate(meaning_lines(heat.meaning)):
        p.drawText(QtCore.QRect(x, y + 37 + i * LINE, BAR_WIDTH, LINE), QtCore.Qt.AlignmentFlag.AlignLeft, line)
    p.end()
    return image
