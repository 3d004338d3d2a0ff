"""The object under construction on one slice view, above the label map: its mask in its own colour
(a light fill with a solid outline, so the anatomy under it stays readable), the prompts as markers
(green positive, red negative: solid on the slice they lie on, fading within a few mm of it) and the
box, lasso or scribble being drawn.

Prompts are in LPS mm; the view draws the display grid (core.display), in millimetres of its plane."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.display import DisplayGrid
from core.overlay import outline
from core.render2d import codes_argb, premultiplied
from gui.argb_item import ArgbItem
from inference.interactive.prompts import Box, Lasso, Point, Prompts, Scribble

OBJECT_RGB = (255, 170, 0)  # amber: unlike the segment palette's first colours, visible on grey
POSITIVE, NEGATIVE = QtGui.QColor(40, 230, 40), QtGui.QColor(255, 40, 40)
NEAR_MM = 5.0  # prompts this close to the shown slice (or 1.5 slices, if more) show, faded
FADE_LEVELS = 3  # strokes and boxes off the slice: this many steps of fading
#: codes 0 outside, 1 inside, 2 the object's edge on the slice
_TABLE = premultiplied(np.array([[0, 0, 0, 0], [*OBJECT_RGB, 90], [*OBJECT_RGB, 255]], np.uint8))


def _pen(color: QtGui.QColor, width: float = 2.0, dashed: bool = False) -> QtGui.QPen:
    pen = QtGui.QPen(color, width)
    pen.setCosmetic(True)  # pixels on screen, whatever the zoom
    if dashed:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen


class InteractiveOverlay:
    """Layers added to one SliceView; ``show`` sets what to draw, slice changes redraw."""

    def __init__(self, view) -> None:
        self.view = view
        self.mask_item = ArgbItem()
        self.mask_item.setZValue(20)  # over the label map (10) and heat maps, under the crosshair (100)
        self.markers = pg.ScatterPlotItem(pxMode=True)
        self.markers.setZValue(40)
        # boxes, lassos and scribbles: positive ones green, negative ones red
        self.shapes = {positive: QtWidgets.QGraphicsPathItem() for positive in (True, False)}
        self.sketch = QtWidgets.QGraphicsPathItem()  # the drag in progress
        self.sketch.setZValue(35)
        for positive, item in self.shapes.items():
            item.setPen(_pen(POSITIVE if positive else NEGATIVE))
            item.setZValue(30)
        # the same, off the slice but within reach of it: dashed, fainter the further (level 1..)
        self.near_shapes = {(positive, lvl): QtWidgets.QGraphicsPathItem()
                            for positive in (True, False) for lvl in range(1, FADE_LEVELS + 1)}
        for (positive, lvl), item in self.near_shapes.items():
            color = QtGui.QColor(POSITIVE if positive else NEGATIVE)
            color.setAlpha(int(220 - 140 * (lvl - 1) / max(FADE_LEVELS - 1, 1)))
            item.setPen(_pen(color, 1.5, dashed=True))
            item.setZValue(29)
        for item in (self.mask_item, *self.shapes.values(), *self.near_shapes.values(), self.sketch,
                     self.markers):
            view.viewbox.addItem(item, ignoreBounds=True)
        self.display_mask: Optional[np.ndarray] = None  # uint8 (z, y, x) on the display grid, or None
        self.prompts = Prompts()
        self._shown = -1
        view.model.subscribe("cursor", self._on_cursor)
        view.model.subscribe("image", self.clear)

    # -- what to show --------------------------------------------------------------------------
    def show(self, display_mask: Optional[np.ndarray], prompts: Prompts) -> None:
        self.display_mask, self.prompts = display_mask, prompts
        self.redraw()

    def clear(self) -> None:
        self.display_mask, self.prompts = None, Prompts()
        self.sketch.setPath(QtGui.QPainterPath())
        self.redraw()

    @property
    def grid(self) -> Optional[DisplayGrid]:
        return self.view.model.display

    def _on_cursor(self) -> None:
        if self.grid is None or self.view.model.slice_index(self.view.view) == self._shown:
            return
        if self.display_mask is None and not self.prompts.items:  # nothing to draw on any slice
            self._shown = self.view.model.slice_index(self.view.view)
            return
        self.redraw()

    def redraw(self) -> None:
        g = self.grid
        if g is None:
            self.mask_item.clear()
            self.markers.clear()
            for item in (*self.shapes.values(), *self.near_shapes.values()):
                item.setPath(QtGui.QPainterPath())
            return
        self._shown = self.view.model.slice_index(self.view.view)
        self._draw_mask(g)
        self._draw_prompts(g)

    def _draw_mask(self, g: DisplayGrid) -> None:
        if self.display_mask is None:
            self.mask_item.clear()
            return
        plane = DisplayGrid.take_slice(self.display_mask, self.view.view, self._shown)
        codes = plane + (outline(plane) > 0).astype(np.uint8)
        self.mask_item.set_rect(self._rect(g))
        self.mask_item.set_pixels(codes_argb(codes, _TABLE), plane)

    def _rect(self, g: DisplayGrid) -> QtCore.QRectF:
        sr, sc = g.plane_spacing(self.view.view)
        r_axis, c_axis = g.plane_axes(self.view.view)
        return QtCore.QRectF(-0.5 * sc, -0.5 * sr, g.grid.size[c_axis] * sc, g.grid.size[r_axis] * sr)

    # -- prompts --------------------------------------------------------------------------------
    def to_scene(self, lps) -> tuple[np.ndarray, np.ndarray]:
        """Scene (x, y) mm of LPS points on this view, and whether each lies on the shown slice."""
        return self.view.world_to_scene(lps)

    def _draw_prompts(self, g: DisplayGrid) -> None:
        """Prompts on the shown slice solid; those within ``reach`` mm of it faded, smaller and
        dashed, the further the fainter (as Slicer's markups), so they stay in sight while scrolling."""
        axis = g.sliced_axis(self.view.view)
        spacing = float(g.grid.spacing[axis])
        reach = max(NEAR_MM, 1.5 * spacing)  # thick slices: the neighbouring slices' prompts too
        spots, paths = [], {key: QtGui.QPainterPath() for key in self._path_keys()}

        def place(lps):
            """Scene (x, y) of LPS points, their signed distance (mm) off the slice, whether each is on it."""
            xy, on = self.to_scene(lps)
            ijk = g.grid.world_to_index(np.asarray(lps, dtype=np.float64).reshape(-1, 3))
            return xy, (ijk[:, axis] - self._shown) * spacing, on

        def level(dist: float) -> int:
            return 1 + min(FADE_LEVELS - 1, int(FADE_LEVELS * max(0.0, dist - 0.5 * spacing)
                                                / max(reach - 0.5 * spacing, 1e-9)))

        for p in self.prompts.items:
            if isinstance(p, Point):
                xy, dist, on = place([p.lps])
                dist = np.abs(dist)
                if on[0] or dist[0] <= reach:
                    spots.append(self._spot(xy[0], p.positive, 0.0 if on[0] else
                                            (dist[0] - 0.5 * spacing) / max(reach - 0.5 * spacing, 1e-9)))
                continue
            if isinstance(p, Box):
                (a, b), signed, on = place([p.lps_min, p.lps_max])
                dist = np.abs(signed)
                across = signed.min() <= 0 <= signed.max()  # the slice cuts the box: what is drawn lies on it
                if on.all() or across or dist.min() <= reach:
                    key = (True, 0 if on.all() or across else level(float(dist.min())))
                    paths[key].addRect(QtCore.QRectF(QtCore.QPointF(*a), QtCore.QPointF(*b)).normalized())
                continue
            xy, dist, on = place(p.lps)
            dist = np.abs(dist)
            # each stretch of a stroke drawn as near as its ends: an oblique lasso crossing the slice
            # is solid where it crosses, fading where it leaves it
            lv = [0 if o else level(float(d)) if d <= reach else -1 for o, d in zip(on, dist)]
            n = len(xy)
            pairs = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if isinstance(p, Lasso) and n > 2 else [])
            ends: dict = {}  # per path, the vertex its pen rests on (a stroke stays one dash pattern)
            for i, j in pairs:
                if lv[i] < 0 or lv[j] < 0:
                    continue
                key = (p.positive, max(lv[i], lv[j]))
                if ends.get(key) != i:
                    paths[key].moveTo(*xy[i])
                paths[key].lineTo(*xy[j])
                ends[key] = j
            if n == 1 and lv[0] >= 0:
                paths[(p.positive, lv[0])].addEllipse(QtCore.QPointF(*xy[0]), 0.5, 0.5)
        self.markers.setData(spots)
        self.markers.setVisible(bool(spots))  # an empty scatter still costs a paint per view repaint
        for (positive, lvl), path in paths.items():
            (self.shapes[positive] if lvl == 0 else self.near_shapes[(positive, lvl)]).setPath(path)

    @staticmethod
    def _path_keys():
        return [(positive, lvl) for positive in (True, False) for lvl in range(FADE_LEVELS + 1)]

    @staticmethod
    def _spot(xy, positive: bool, fade: float) -> dict:
        """A point's marker: on the slice a filled disc with a black rim; off it a ring in the
        point's colour, smaller and fainter with distance (``fade`` 0..1)."""
        color = QtGui.QColor(POSITIVE if positive else NEGATIVE)
        if fade <= 0.0:
            return {"pos": tuple(xy), "size": 10, "brush": color, "pen": pg.mkPen("k", width=1.5)}
        fade = min(1.0, fade)
        color.setAlpha(int(230 - 150 * fade))
        return {"pos": tuple(xy), "size": 9 - 4 * fade, "brush": QtGui.QBrush(QtCore.Qt.BrushStyle.NoBrush),
                "pen": pg.mkPen(color, width=2)}

    def draw_sketch(self, lps_points, mode: str, negative: bool) -> None:
        """The drag in progress: a box's rectangle, a lasso's or scribble's line."""
        path = QtGui.QPainterPath()
        if lps_points is not None and len(lps_points) > 1 and self.grid is not None:
            xy, _on = self.to_scene(lps_points)
            if mode == "box":
                path.addRect(QtCore.QRectF(QtCore.QPointF(*xy[0]), QtCore.QPointF(*xy[-1])).normalized())
            else:
                path.moveTo(*xy[0])
                for q in xy[1:]:
                    path.lineTo(*q)
                if mode == "lasso":
                    path.closeSubpath()
        self.sketch.setPen(_pen(NEGATIVE if negative else POSITIVE, dashed=True))
        self.sketch.setPath(path)

