"""Measurements on one slice view: rulers, angles, ellipses and RECIST axes lying on the shown slice,
each with its value as a label (white on a dark shadow, readable over bright and dark anatomy), and
the one being drawn (dashed). Points are LPS mm, mapped with SliceView.world_to_scene."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.measurements import Measurement, ellipse_axes, text, values

COLOR = QtGui.QColor(255, 220, 0)  # yellow, as Slicer's and most PACS' rulers
SHORT_COLOR = QtGui.QColor(0, 220, 255)  # RECIST short axis


def _pen(color: QtGui.QColor, width: float = 2.0, dashed: bool = False) -> QtGui.QPen:
    pen = QtGui.QPen(color, width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen


def ellipse_outline(points, n: int = 72) -> np.ndarray:
    c, u, v = ellipse_axes(points)
    t = np.linspace(0, 2 * np.pi, n)
    return c + np.cos(t)[:, None] * u + np.sin(t)[:, None] * v


class MeasureOverlay:
    """Layers added to one SliceView; ``show`` sets the measurements, slice changes redraw."""

    def __init__(self, view) -> None:
        self.view = view
        self.paths = {c: QtWidgets.QGraphicsPathItem() for c in ("main", "short", "sketch")}
        self.paths["main"].setPen(_pen(COLOR))
        self.paths["short"].setPen(_pen(SHORT_COLOR))
        self.paths["sketch"].setPen(_pen(COLOR, dashed=True))
        for item in self.paths.values():
            item.setZValue(50)  # over segments and the interactive object, under the crosshair
            view.viewbox.addItem(item, ignoreBounds=True)
        self.labels: list[pg.TextItem] = []
        self._placed: list[QtCore.QRectF] = []  # the labels' boxes on this redraw, viewport pixels
        self.measurements: list[Measurement] = []
        self.volume = None
        self._shown = -1
        view.model.subscribe("cursor", self._on_cursor)
        view.model.subscribe("image", lambda: self.show([], None))
        # labels are placed in viewport pixels: a zoom, pan or resize places them again
        view.viewbox.sigRangeChanged.connect(lambda *_: self.redraw() if self.measurements else None)

    def show(self, measurements, volume) -> None:
        self.measurements, self.volume = list(measurements), volume
        self.redraw()

    def _on_cursor(self) -> None:
        if self.view.model.display is not None and self.view.model.slice_index(self.view.view) != self._shown:
            self.redraw()

    def _label(self, n: int, s: str, xy) -> None:
        while len(self.labels) <= n:
            # white on a translucent dark box with a drop shadow: readable over bone and air alike
            item = pg.TextItem(color=(255, 255, 255), anchor=(-0.05, 1.1), fill=pg.mkBrush(0, 0, 0, 110))
            shadow = QtWidgets.QGraphicsDropShadowEffect()
            shadow.setColor(QtGui.QColor(0, 0, 0, 255))
            shadow.setOffset(1.2, 1.2)
            shadow.setBlurRadius(4)
            item.setGraphicsEffect(shadow)
            font = item.textItem.font()
            font.setBold(True)
            font.setPointSize(10)
            item.setFont(font)
            item.setZValue(60)
            self.view.viewbox.addItem(item, ignoreBounds=True)
            self.labels.append(item)
        item = self.labels[n]
        item.setText(s)
        item.setAnchor(self._place(item, s, xy))
        item.setPos(float(xy[0]), float(xy[1]))
        item.setVisible(True)

    def _place(self, item, s: str, xy) -> tuple[float, float]:
        """The label's anchor: right of and above its point, unless that leaves the view (then left
        of it) or covers a label already placed on this redraw (then below, or further up or
        down). Worked in viewport pixels: a RECIST label at the right edge was cut ("Liver: 228.4"
        without its "x 125.0 mm") and sat over the ellipse's."""
        metrics = QtGui.QFontMetrics(item.textItem.font())
        lines = s.splitlines() or [""]
        w = max(metrics.horizontalAdvance(line) for line in lines) + 8
        h = metrics.lineSpacing() * len(lines) + 6
        at = self.view.viewbox.mapViewToDevice(QtCore.QPointF(float(xy[0]), float(xy[1])))
        port = self.view.graphics.viewport().rect()
        if at is None:
            return (-0.05, 1.1)
        ax = 1.05 if at.x() + 1.05 * w > port.right() and at.x() - 1.05 * w >= port.left() else -0.05
        left = at.x() - ax * w
        best = None
        for ay in (1.1, -0.1, 2.2, -1.2, 3.3):
            box = QtCore.QRectF(left, at.y() - ay * h, w, h)
            if any(box.intersects(other) for other in self._placed):
                continue
            if port.top() <= box.top() and box.bottom() <= port.bottom():
                best = (ay, box)
                break
            best = best or (ay, box)
        ay, box = best if best is not None else (1.1, QtCore.QRectF(left, at.y() - 1.1 * h, w, h))
        self._placed.append(box)
        return (ax, ay)

    def redraw(self) -> None:
        if not self.measurements and self._blank():  # most slice changes: nothing to draw or clear
            if self.view.model.display is not None:
                self._shown = self.view.model.slice_index(self.view.view)
            return
        main, short = QtGui.QPainterPath(), QtGui.QPainterPath()
        shown, self._placed = 0, []
        if self.view.model.display is not None:
            self._shown = self.view.model.slice_index(self.view.view)
            for m in self.measurements:
                pts = ellipse_outline(m.points) if m.kind == "ellipse" else m.array
                xy, on = self.view.world_to_scene(pts)
                if not on.all():
                    continue
                if m.kind == "recist":
                    _line(main, xy[:2])
                    _line(short, xy[2:])
                    anchor = xy[1]
                elif m.kind == "ellipse":
                    _line(main, xy)
                    anchor = xy[np.argmax(xy[:, 0])]  # the label beside the ellipse's rightmost point
                else:
                    _line(main, xy)
                    anchor = xy[1] if m.kind == "angle" else xy[-1]
                self._label(shown, text(m, values(m, self.volume)), anchor)
                shown += 1
        for item in self.labels[shown:]:
            item.setVisible(False)
        self.paths["main"].setPath(main)
        self.paths["short"].setPath(short)

    def _blank(self) -> bool:
        return (self.paths["main"].path().isEmpty() and self.paths["short"].path().isEmpty()
                and not any(item.isVisible() for item in self.labels))

    def draw_sketch(self, lps_points, ellipse: bool = False) -> None:
        """The measurement being drawn (None: nothing)."""
        path = QtGui.QPainterPath()
        if lps_points is not None and len(lps_points) > 1 and self.view.model.display is not None:
            pts = ellipse_outline(lps_points) if ellipse else lps_points
            _line(path, self.view.world_to_scene(pts)[0])
        self.paths["sketch"].setPath(path)


def _line(path: QtGui.QPainterPath, xy) -> None:
    path.moveTo(*xy[0])
    for q in xy[1:]:
        path.lineTo(*q)
