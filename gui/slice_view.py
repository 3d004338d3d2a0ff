"""One slice view (axial, coronal or sagittal) of the viewer model, drawn with pyqtgraph.

Scene units are millimetres in the view plane, so anisotropic voxels keep their true aspect and
the crosshair is placed in world coordinates. Mouse, as in Slicer / ITK-SNAP: left click or drag
moves the crosshair, right drag changes window/level, middle drag pans, wheel steps slices,
Ctrl+wheel zooms. Tools (painting, issue "editing") replace the left-button behaviour; the
interactive tool also takes right clicks (negative prompts).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from core.display import ROWS_DOWN, DisplayGrid
from core.overlay import outline
from core.render2d import WindowLut, premultiplied
from gui.argb_item import ArgbItem
from gui.layer_pixels import LayerBuffers, codes_into, composite_into, image_into, over_table
from gui.plane_cache import PlaneBlocks
from gui.view_annotations import VIEW_COLORS, ViewAnnotations, view_title  # noqa: F401 (imported from here)
from core.viewer_model import ViewerModel
from core.windows import dragged, levels


class _SliceViewBox(pg.ViewBox):
    def __init__(self, owner: "SliceView") -> None:
        super().__init__(lockAspect=True, enableMenu=False)
        self.owner = owner
        self._wl_start = None
        if self.border.style() == QtCore.Qt.PenStyle.NoPen:
            # its paint only outlines it with this invisible pen (the outline is a child item):
            # skipped, each repaint of a view makes one call into Python less
            self.setFlag(self.GraphicsItemFlag.ItemHasNoContents)

    def mouseClickEvent(self, ev) -> None:
        self.owner.modifiers = ev.modifiers()
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.owner.left_at(self.mapToView(ev.pos()), "click")
        elif ev.button() == QtCore.Qt.MouseButton.RightButton and self.owner.right_handler is not None:
            ev.accept()
            self.owner.left_at(self.mapToView(ev.pos()), "click", self.owner.right_handler)
        else:
            ev.ignore()

    def mouseDragEvent(self, ev, axis=None) -> None:
        self.owner.modifiers = ev.modifiers()
        btn = ev.button()
        if btn == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            # a drag starts where the button went down, not where the mouse is once it has moved enough
            self.owner.left_at(self.mapToView(ev.buttonDownPos() if ev.isStart() else ev.pos()),
                               "start" if ev.isStart() else "finish" if ev.isFinish() else "drag")
        elif btn == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            model = self.owner.model
            if ev.isStart():
                self._wl_start = model.window
            if self._wl_start is not None:
                delta = ev.screenPos() - ev.buttonDownScreenPos()
                model.set_window(dragged(self._wl_start, delta.x(), delta.y(), model.value_span()))
        elif btn == QtCore.Qt.MouseButton.MiddleButton:
            ev.accept()
            tr = self.mapToView(ev.pos()) - self.mapToView(ev.lastPos())
            self.translateBy(-tr)
        else:
            ev.ignore()

    def wheelEvent(self, ev, axis=None) -> None:
        if ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        steps = 1 if ev.delta() > 0 else -1
        self.owner.model.scroll(self.owner.view, steps)


def _colormap(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of a matplotlib/colorcet colour map shipped with pyqtgraph."""
    return pg.colormap.get(name).getLookupTable(nPts=256, alpha=False)


class _Graphics(pg.GraphicsView):
    """The view's graphics, with its annotations painted over the scene in viewport pixels."""

    def __init__(self, owner: "SliceView") -> None:
        super().__init__(background="k")
        self.owner = owner
        # the black background is one fill; pyqtgraph's cached background pixmap was copied under
        # every repaint instead (~0.15 ms a view)
        self.setCacheMode(QtWidgets.QGraphicsView.CacheModeFlag.CacheNone)
        # drawBackground paints every exposed pixel: the viewport's own fill in its palette colour
        # under it (a view's worth of pixels each repaint) is not wanted
        self.viewport().setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def drawBackground(self, painter: QtGui.QPainter, rect: QtCore.QRectF) -> None:
        """Black, except where the opaque image is about to cover every pixel anyway (most of a
        whole repaint: ~0.05 ms a view of filling)."""
        covered = None
        if rect.width() * rect.height() > 20000 and self.viewportTransform().isIdentity():  # not for line strips
            covered = self.owner.covered_rect()
        if covered is None or not rect.intersects(covered):
            super().drawBackground(painter, rect)
            return
        brush = self.backgroundBrush()
        # scene coordinates are viewport pixels here; the parts of rect around covered
        top, bottom = max(rect.top(), covered.top()), min(rect.bottom(), covered.bottom())
        for part in (QtCore.QRectF(rect.left(), rect.top(), rect.width(), top - rect.top()),
                     QtCore.QRectF(rect.left(), bottom, rect.width(), rect.bottom() - bottom),
                     QtCore.QRectF(rect.left(), top, covered.left() - rect.left(), bottom - top),
                     QtCore.QRectF(covered.right(), top, rect.right() - covered.right(), bottom - top)):
            if part.width() > 0 and part.height() > 0:
                painter.fillRect(part, brush)

    def drawForeground(self, painter: QtGui.QPainter, rect: QtCore.QRectF) -> None:
        self.owner.paint_crosshair(painter)
        painter.save()
        painter.resetTransform()
        exposed = self.mapFromScene(rect).boundingRect().intersected(self.viewport().rect())
        self.owner.annotations.paint(painter, QtCore.QRectF(exposed))
        self.owner.heat_bar.paint(painter, QtCore.QRectF(exposed))
        painter.restore()


class SliceView(QtWidgets.QWidget):
    """Shows ``model`` along ``view``; redraws only what a model event made stale."""

    cursor_hover = QtCore.Signal(object)  # display index (x, y, z) under the mouse

    def __init__(self, model: ViewerModel, view: str, parent=None) -> None:
        super().__init__(parent)
        self.model, self.view = model, view
        self.graphics = _Graphics(self)
        self.viewbox = _SliceViewBox(self)
        self.graphics.setCentralItem(self.viewbox)
        self.image_item = ArgbItem(opaque=True)
        self.label_item = ArgbItem()
        self.label_item.setZValue(10)
        self.heat_items: list[ArgbItem] = []
        self._window_lut = WindowLut()
        self.label_table: Optional[np.ndarray] = None  # premultiplied ARGB per label value
        self._heat_tables: list[np.ndarray] = []
        self._buffers = LayerBuffers()  # each layer's pixels, refilled on every slice change
        # sagittal planes cut across every row of the z-major arrays: gathered a block at a time
        self._blocks = PlaneBlocks() if view == "sagittal" else None
        self._line_pos = (None, None)
        self._over: Optional[tuple] = None  # (label table, heat table, the one over the other)
        self.viewbox.addItem(self.image_item)
        self.viewbox.addItem(self.label_item)
        # the crosshair is painted by the viewport over every item (as lines at the top of the
        # scene were) and a move repaints the strips it left and entered: no scene item changes, so
        # Qt repaints all views a move changed at once instead of one scene (and window flush) at a time
        self._crosshair_pen = pg.mkPen(VIEW_COLORS[view], width=1)  # cosmetic: one screen pixel at any zoom
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.graphics)
        self.annotations = ViewAnnotations(self)
        from gui.colorbar_item import HeatBar

        self.heat_bar = HeatBar(self)  # the shown maps' colour bars, range and meaning
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(120, 120)
        self.left_handler: Optional[Callable] = None  # tool override: fn(view, display_ijk, phase)
        self.right_handler: Optional[Callable] = None  # a tool's right click (right drags stay window/level)
        self.modifiers = QtCore.Qt.KeyboardModifier.NoModifier  # of the last mouse event (Ctrl+click)
        self.shown_index = -1
        self.graphics.scene().sigMouseMoved.connect(self._hover)
        # pyqtgraph treats presses shorter than 0.5 s as clicks unless the mouse moved far: a quick
        # brush stroke must paint along its path, so any movement starts a drag
        self.graphics.scene().minDragTime = 0.0
        self.viewbox.sigRangeChanged.connect(lambda *_: self.annotations.range_changed())
        for event, fn in (("image", self._on_image), ("cursor", self._on_cursor), ("window", self._on_window),
                          ("labels", self._on_labels), ("segments", self._on_segments),
                          ("heatmaps", self._on_heatmaps)):
            model.subscribe(event, fn)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def grid(self) -> DisplayGrid:
        return self.model.display

    def _rect(self) -> QtCore.QRectF:
        sr, sc = self.grid.plane_spacing(self.view)
        r_axis, c_axis = self.grid.plane_axes(self.view)
        rows, cols = self.grid.grid.size[r_axis], self.grid.grid.size[c_axis]
        return QtCore.QRectF(-0.5 * sc, -0.5 * sr, cols * sc, rows * sr)

    def scene_to_index(self, point: QtCore.QPointF) -> np.ndarray:
        sr, sc = self.grid.plane_spacing(self.view)
        return self.grid.plane_to_index(self.view, self.model.slice_index(self.view), point.y() / sr, point.x() / sc)

    def world_to_scene(self, lps) -> tuple[np.ndarray, np.ndarray]:
        """Scene (x, y) mm of LPS points (..., 3) on this view, and whether each lies on the shown
        slice: the one mapping the overlays (interactive prompts, measurements) draw with."""
        g, view = self.grid, self.view
        ijk = g.grid.world_to_index(np.asarray(lps, dtype=np.float64).reshape(-1, 3))
        sr, sc = g.plane_spacing(view)
        r, c = g.plane_axes(view)
        on = np.abs(ijk[:, g.sliced_axis(view)] - self.model.slice_index(view)) <= 0.5 + 1e-6
        return np.c_[ijk[:, c] * sc, ijk[:, r] * sr], on

    # -- model events ---------------------------------------------------------------------------
    def _on_image(self) -> None:
        self._forget()
        self.annotations.range_changed()  # new letters, title and scale bar
        if self.model.display is None:
            for item in [self.image_item, self.label_item] + self.heat_items:
                item.clear()
            self.shown_index = -1
            self.graphics.viewport().update()
            return
        self.viewbox.invertY(ROWS_DOWN[self.view])
        for item in (self.image_item, self.label_item):
            item.clear()
            item.set_rect(self._rect())
        self._set_heat_items()
        self.shown_index = -1
        self._on_cursor()
        self.reset_zoom()

    def reset_zoom(self) -> None:
        if self.model.display is not None:
            self.viewbox.setRange(self._rect(), padding=0.02)

    def _on_cursor(self) -> None:
        if self.model.display is None:
            return
        k = self.model.slice_index(self.view)
        sr, sc = self.grid.plane_spacing(self.view)
        r_axis, c_axis = self.grid.plane_axes(self.view)
        pos = (float(self.model.cursor[r_axis] * sr), float(self.model.cursor[c_axis] * sc))
        if k != self.shown_index:
            self.shown_index = k
            self._line_pos = pos
            self._draw_image()
            self._draw_overlays()
            self._repaint()  # layers, title and lines
        elif pos != self._line_pos:  # a slice change elsewhere moves one line here
            self._repaint_lines(self._line_pos, pos)
            self._line_pos = pos

    def _on_window(self) -> None:
        if self.model.volume is not None and not self.model.volume.is_color:
            self._draw_image()

    def _on_labels(self) -> None:
        self._forget("labels")  # edited in place
        if self.model.display is not None and self.model.slice_touched(self.view):
            self._draw_labels(self._composed_heat())

    def _on_segments(self) -> None:
        m = self.model
        self.label_table = None if m.labelmap is None else premultiplied(m.label_lut())
        self._on_labels()

    def _on_heatmaps(self) -> None:
        self._forget("heat")
        if self.model.display is not None:
            self._set_heat_items()
            self._draw_overlays()

    # -- repainting -------------------------------------------------------------------------------
    def _repaint(self) -> None:
        self.graphics.viewport().update()

    def _show(self, item: ArgbItem, fill: Callable[[], np.ndarray], plane: np.ndarray) -> None:
        """A layer's new pixels, coloured by ``fill`` when painted (gui.argb_item), repainted with
        the whole view (not through the scene: see __init__)."""
        item.fill_later(fill, plane)
        self._repaint()

    def covered_rect(self) -> Optional[QtCore.QRectF]:
        """Whole viewport pixels the opaque image layer paints over whatever is beneath (its
        rectangle within the view box, less a pixel at each edge, where Qt rounds a scaled image's
        edges), or None when it paints nothing."""
        item = self.image_item
        if not item.isVisible() or not item.has_pixels or self.model.display is None:
            return None
        r = self._line_transform().mapRect(item.boundingRect()).intersected(
            self.viewbox.mapRectToScene(self.viewbox.rect()))
        left, top = math.ceil(r.left()) + 1, math.ceil(r.top()) + 1
        right, bottom = math.floor(r.right()) - 1, math.floor(r.bottom()) - 1
        if right <= left or bottom <= top:
            return None
        return QtCore.QRectF(left, top, right - left, bottom - top)

    def _line_transform(self) -> QtGui.QTransform:
        """View (mm) to viewport pixels, as the items in the view box are drawn."""
        return self.viewbox.childGroup.deviceTransform(self.graphics.viewportTransform())

    def _repaint_lines(self, old: tuple, new: tuple) -> None:
        vp = self.graphics.viewport()
        if None in old:
            vp.update()
            return
        t = self._line_transform()
        for before, after, horizontal in ((old[0], new[0], True), (old[1], new[1], False)):
            if before == after:
                continue
            for at in (before, after):  # the line's pixel and two either side (rounding, as Qt pads items)
                p = t.map(QtCore.QPointF(0.0, at) if horizontal else QtCore.QPointF(at, 0.0))
                if horizontal:
                    vp.update(QtCore.QRect(0, int(np.floor(p.y())) - 2, vp.width(), 5))
                else:
                    vp.update(QtCore.QRect(int(np.floor(p.x())) - 2, 0, 5, vp.height()))

    def paint_crosshair(self, painter: QtGui.QPainter) -> None:
        """The crosshair lines through the cursor, over everything in the view box and under the
        view's annotations; ``painter`` in scene coordinates (the viewport's drawForeground)."""
        row, col = self._line_pos
        if row is None or self.model.display is None:
            return
        at = self._line_transform().map(QtCore.QPointF(col, row))
        painter.save()
        # the view box's sceneBoundingRect without asking pyqtgraph's boundingRect (Python) for it
        box = self.viewbox.mapRectToScene(self.viewbox.rect().adjusted(0.0, 0.0, 0.5, 0.5))
        painter.setClipRect(box, QtCore.Qt.ClipOperation.IntersectClip)
        # in viewport pixels, just across the view: the same pixels as lines through the view box's
        # transform reaching beyond the view, whose clipping cost Qt ~0.1 ms a view
        painter.resetTransform()
        painter.setPen(self._crosshair_pen)
        vp = self.graphics.viewport()
        painter.drawLine(QtCore.QLineF(-2.0, at.y(), vp.width() + 2.0, at.y()))
        painter.drawLine(QtCore.QLineF(at.x(), -2.0, at.x(), vp.height() + 2.0))
        painter.restore()

    # -- drawing ------------------------------------------------------------------------------------
    def plane(self, array: np.ndarray, name: Optional[str] = None) -> np.ndarray:
        """The shown slice of a display array; ``name`` lets a sagittal view serve it from a block."""
        k = self.model.slice_index(self.view)
        if self._blocks is not None and name is not None:
            return self._blocks.plane(name, array, k)
        return DisplayGrid.take_slice(array, self.view, k)

    def _forget(self, prefix: str = "") -> None:
        if self._blocks is not None:
            self._blocks.forget(prefix)

    def _draw_image(self) -> None:
        plane = self.plane(self.model.image, "image")
        lo, hi = levels(self.model.window)
        out = self._buffers.get("image", plane.shape[:2])
        self._show(self.image_item, lambda: image_into(plane, lo, hi, self._window_lut, out), plane)

    def _draw_overlays(self) -> None:
        composed = self._composed_heat()
        self._draw_heat(composed)
        self._draw_labels(composed)

    def _composed_heat(self) -> Optional[int]:
        """The heat map drawn in the label layer (labels over it, looked up in one step: one gather
        and one layer less to blend), when segments and exactly one map are shown; else None."""
        m = self.model
        if m.labels is None or self.label_table is None or m.labels.dtype != np.uint8 or self.label_table.size < 256:
            return None
        shown = [i for i, h in enumerate(m.heatmaps) if h.visible and i < len(self._heat_tables)]
        return shown[0] if len(shown) == 1 else None

    def _draw_labels(self, composed: Optional[int] = None) -> None:
        m = self.model
        if m.labels is None or self.label_table is None:
            self.label_item.setVisible(False)
            self.label_item.clear()
            return
        plane = self.plane(m.labels, "labels")
        if m.outline:
            plane = outline(plane)
        self.label_item.setVisible(True)
        out = self._buffers.get("labels", plane.shape)
        if composed is None:
            table = self.label_table
            self._show(self.label_item, lambda: codes_into(plane, table, out), plane)
            return
        table = self._heat_tables[composed]
        if self._over is None or self._over[0] is not self.label_table or self._over[1] is not table:
            self._over = (self.label_table, table, over_table(self.label_table, table))
        heat = self.plane(m.heat_display(m.heatmaps[composed]), f"heat{composed}")
        self.heat_items[composed].source = heat
        index, over = self._buffers.get("index", plane.shape, np.uint16), self._over[2]
        self._show(self.label_item, lambda: composite_into(plane, heat, over, index, out), plane)

    def _set_heat_items(self) -> None:
        while len(self.heat_items) > len(self.model.heatmaps):
            self.viewbox.removeItem(self.heat_items.pop())
        while len(self.heat_items) < len(self.model.heatmaps):
            item = ArgbItem()
            item.setZValue(5 + len(self.heat_items) * 0.01)
            self.viewbox.addItem(item)
            self.heat_items.append(item)
        for item in self.heat_items:
            item.set_rect(self._rect())
        self._heat_tables = [premultiplied(h.lut(_colormap(h.colormap))) for h in self.model.heatmaps]

    def _draw_heat(self, composed: Optional[int] = None) -> None:
        for i, (item, heat, table) in enumerate(zip(self.heat_items, self.model.heatmaps, self._heat_tables)):
            # a hidden map (one shown at a time) costs no gather, colouring or paint; a map drawn in
            # the label layer is gathered there
            if not heat.visible or i == composed:
                if item.isVisible() or item.has_pixels:
                    item.setVisible(False)
                    item.clear()
                continue
            plane = self.plane(self.model.heat_display(heat), f"heat{i}")
            out = self._buffers.get(f"heat{i}", plane.shape)
            self._show(item, lambda plane=plane, table=table, out=out: codes_into(plane, table, out), plane)
            item.setVisible(True)

    # -- mouse ------------------------------------------------------------------------------------
    def left_at(self, scene_point: QtCore.QPointF, phase: str, handler: Optional[Callable] = None) -> None:
        if self.model.display is None:
            return
        ijk = self.scene_to_index(scene_point)
        handler = handler or self.left_handler
        if handler is not None:
            handler(self.view, ijk, phase)
        else:
            self.model.set_cursor_index(ijk)

    def _hover(self, pos) -> None:
        if self.model.display is None:
            return
        point = self.viewbox.mapSceneToView(pos)
        self.cursor_hover.emit(self.grid.clamp_index(self.scene_to_index(point)))

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        steps = {QtCore.Qt.Key.Key_Up: 1, QtCore.Qt.Key.Key_Down: -1,
                 QtCore.Qt.Key.Key_PageUp: 10, QtCore.Qt.Key.Key_PageDown: -10}.get(ev.key())
        if steps is not None and self.model.display is not None:
            self.model.scroll(self.view, steps)
        elif ev.key() == QtCore.Qt.Key.Key_Home and self.model.display is not None:
            self.model.set_slice(self.view, 0)
        elif ev.key() == QtCore.Qt.Key.Key_End and self.model.display is not None:
            self.model.set_slice(self.view, self.grid.n_slices(self.view) - 1)
        else:
            super().keyPressEvent(ev)

    def screenshot(self) -> QtGui.QImage:
        return self.grab().toImage()
