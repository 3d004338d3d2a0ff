"""What the Edit panel's tools draw on the slice views: the brush's outline (a circle of the brush's
radius in mm, following the mouse), the scissors' shape while it is drawn, and the level-tracing
outline under the mouse before the click fills it. Scene units are millimetres in the view plane
(gui.slice_view), so the brush circle is round on anisotropic images; the level-tracing outline is
traced on the label map's own grid and mapped through LPS, so it is right on oblique ones too."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.actions import editing
from core import editor_effects as fx

COLOR = QtGui.QColor(255, 255, 255)
SHAPE_COLOR = QtGui.QColor(255, 140, 0)  # scissors and level tracing, apart from the yellow rulers


def _pen(color: QtGui.QColor, dashed: bool = False) -> QtGui.QPen:
    pen = QtGui.QPen(color, 1.5)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen


class ShapeTools(QtCore.QObject):
    """Per view: the brush outline and one path (scissors shape or level-tracing preview)."""

    def __init__(self, panel) -> None:
        super().__init__(panel)
        self.panel, self.session = panel, panel.session
        self.views: dict = {}
        self.brush_items: dict[str, QtWidgets.QGraphicsEllipseItem] = {}
        self.paths: dict[str, QtWidgets.QGraphicsPathItem] = {}
        self._shape: list[np.ndarray] = []  # display indices of the scissors' shape being drawn
        self._shape_view: Optional[str] = None
        self._trace_at = None  # (view, voxel) the level-tracing preview shows

    def attach(self, views: dict) -> None:
        self.views = views
        for name, view in views.items():
            brush = QtWidgets.QGraphicsEllipseItem()
            brush.setPen(_pen(COLOR))
            path = QtWidgets.QGraphicsPathItem()
            path.setPen(_pen(SHAPE_COLOR, dashed=True))
            for item in (brush, path):
                item.setZValue(45)  # over segments, under measurements and the crosshair
                item.setVisible(False)
                view.viewbox.addItem(item, ignoreBounds=True)
            self.brush_items[name], self.paths[name] = brush, path
            view.graphics.scene().sigMouseMoved.connect(lambda pos, n=name: self._moved(n, pos))
            view.graphics.viewport().installEventFilter(self)
        self.session.viewer.subscribe("cursor", self._trace_stale)
        self.session.viewer.subscribe("labels", self._trace_stale)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QtCore.QEvent.Type.Leave:
            for name, view in self.views.items():
                if view.graphics.viewport() is obj:
                    self.brush_items[name].setVisible(False)
                    if self._shape_view != name:
                        self.paths[name].setVisible(False)
                        self._trace_at = None
        return False

    def clear(self) -> None:
        """The tool changed: nothing of the last one stays drawn."""
        self._shape, self._shape_view, self._trace_at = [], None, None
        for item in list(self.brush_items.values()) + list(self.paths.values()):
            item.setVisible(False)

    # -- the mouse ----------------------------------------------------------------------------------
    def _moved(self, name: str, pos) -> None:
        view = self.views[name]
        if view.model.display is None:
            return
        point = view.viewbox.mapSceneToView(pos)
        self.panel.last_view = name
        tool = self.panel.tool.currentText()
        if tool in ("Paint", "Erase"):
            self.show_brush(name, point)
        elif tool == "Level trace":
            self.preview_trace(name, view.scene_to_index(point))

    def show_brush(self, name: str, point: QtCore.QPointF) -> None:
        r = self.panel.radius.value()
        item = self.brush_items[name]
        item.setRect(QtCore.QRectF(point.x() - r, point.y() - r, 2 * r, 2 * r))
        item.setVisible(True)
        for other, ring in self.brush_items.items():  # one brush on screen, even when no Leave came
            if other != name and ring.isVisible():
                ring.setVisible(False)

    def brush_resized(self) -> None:
        r = self.panel.radius.value()
        for item in self.brush_items.values():
            c = item.rect().center()
            item.setRect(QtCore.QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))

    # -- level tracing ------------------------------------------------------------------------------
    def _trace_stale(self) -> None:
        if self._trace_at is not None:
            view, voxel = self._trace_at
            self._trace_at = None
            self.preview_trace(view, np.asarray(voxel, float))

    def preview_trace(self, name: str, display_ijk) -> None:
        """The outline the click at ``display_ijk`` would fill, drawn on view ``name``."""
        s, path_item = self.session, self.paths[name]
        voxel = tuple(np.rint(display_ijk).astype(int))
        if self._trace_at == (name, voxel):
            return
        self._trace_at = (name, voxel)
        lm, vol = s.labelmap, s.volume
        path = QtGui.QPainterPath()
        if lm is not None and vol is not None:
            ijk = lm.geometry.world_to_index(s.viewer.display.grid.index_to_world(np.asarray(display_ijk, float)))
            if lm.geometry.contains_index(ijk):
                from skimage.measure import find_contours  # imported here: the window should not wait for it

                axis = editing.plane_axis_for(s, name)
                image = vol.array.mean(axis=-1) if vol.is_color else vol.array
                _sl, region = fx.level_trace_region(image, ijk, axis)
                k = int(np.rint(ijk[axis]))
                for contour in find_contours(np.pad(region, 1).astype(np.float32), 0.5):
                    rc = contour - 1  # (row, col) on the plane's two array axes
                    arr = np.insert(rc, 2 - axis, k, axis=1)  # (z, y, x) array index
                    xy, _on = self.views[name].world_to_scene(lm.geometry.index_to_world(arr[:, ::-1]))
                    _polyline(path, xy, closed=True)
        path_item.setPath(path)
        path_item.setVisible(not path.isEmpty())

    # -- scissors ---------------------------------------------------------------------------------------
    def scissors_event(self, name: str, display_ijk, phase: str) -> Optional[np.ndarray]:
        """A drag draws the shape; its end returns the shape's display indices (None until then, or
        when it is too small to cut with)."""
        p = np.asarray(display_ijk, dtype=np.float64)
        if phase == "start":
            self._shape, self._shape_view = [p], name
        elif phase in ("drag", "finish") and self._shape_view == name:
            self._shape.append(p)
        else:
            return None
        path = QtGui.QPainterPath()
        _polyline(path, self._scene(name, np.array(self._shape)), closed=phase == "finish")
        self.paths[name].setPath(path)
        self.paths[name].setVisible(phase != "finish")
        if phase != "finish":
            return None
        shape, self._shape, self._shape_view = np.array(self._shape), [], None
        return shape if len(shape) >= 3 else None

    def _scene(self, name: str, display_ijk: np.ndarray) -> np.ndarray:
        grid = self.session.viewer.display
        sr, sc = grid.plane_spacing(name)
        r, c = grid.plane_axes(name)
        return np.c_[display_ijk[:, c] * sc, display_ijk[:, r] * sr]


def _polyline(path: QtGui.QPainterPath, xy, closed: bool = False) -> None:
    if len(xy) == 0:
        return
    path.moveTo(*xy[0])
    for q in xy[1:]:
        path.lineTo(*q)
    if closed:
        path.closeSubpath()


#: preview codes: 0 unchanged, 1 would be painted, 2 would be cleared
_PREVIEW_TABLE = None


def _preview_table() -> np.ndarray:
    """Codes 1 (painted) and 2 (cleared) on stripe A, 3 and 4 on stripe B: painted is green and white,
    cleared red and black, in diagonal stripes, so neither reads as a segment's solid fill (the
    palette's first two segments are red and green: in the tryout, "cleared" red on segment 1's red
    could not be told apart)."""
    global _PREVIEW_TABLE
    if _PREVIEW_TABLE is None:
        from core.render2d import premultiplied

        _PREVIEW_TABLE = premultiplied(np.array([[0, 0, 0, 0], [60, 220, 60, 170], [255, 40, 40, 190],
                                                 [255, 255, 255, 150], [0, 0, 0, 190]], np.uint8))
    return _PREVIEW_TABLE


STRIPE = 3  # image pixels per stripe


def hatched(plane: np.ndarray) -> np.ndarray:
    """Preview codes (1 painted, 2 cleared) with every other diagonal stripe moved to its second
    colour (codes 3, 4)."""
    rows, cols = np.indices(plane.shape[:2])
    second = ((rows + cols) // STRIPE) % 2 == 1
    return np.where(second & (plane > 0), plane + 2, plane).astype(np.uint8)


class EditPreview:
    """An operation's Edit before it is applied, on every slice view: green and white stripes where
    it would paint, red and black stripes where it would clear. The label map is untouched until Apply."""

    def __init__(self, session) -> None:
        self.session = session
        self.items: dict = {}
        self.views: dict = {}
        self.codes: Optional[np.ndarray] = None  # uint8 on the display grid
        self._blank = True  # every view's preview item is clear

    def attach(self, views: dict) -> None:
        from gui.argb_item import ArgbItem

        self.views = views
        for name, view in views.items():
            item = ArgbItem()
            item.setZValue(15)  # over the label map (10), under the interactive object (20)
            view.viewbox.addItem(item, ignoreBounds=True)
            self.items[name] = item
        self.session.viewer.subscribe("cursor", self.redraw)
        self.session.viewer.subscribe("image", lambda: self.show(None))

    def show(self, edit) -> None:
        viewer = self.session.viewer
        if edit is None or viewer.display is None or self.session.labelmap is None:
            self.codes = None
        else:
            codes = np.zeros(self.session.labelmap.array.shape, np.uint8)
            changed = edit.before != edit.after
            sub = codes[edit.box]
            sub[changed & (edit.after != 0)] = 1
            sub[changed & (edit.after == 0)] = 2
            self.codes = viewer.display.to_display(codes, order=0)
        self.redraw()

    def redraw(self) -> None:
        from core.display import DisplayGrid
        from core.render2d import codes_argb

        if self.codes is None and self._blank:  # no preview: a crosshair move has nothing to clear
            return
        self._blank = self.codes is None
        for name, item in self.items.items():
            view = self.views[name]
            if self.codes is None or view.model.display is None:
                item.clear()
                continue
            plane = DisplayGrid.take_slice(self.codes, name, view.model.slice_index(name))
            item.set_rect(view._rect())
            item.set_pixels(codes_argb(hatched(plane), _preview_table()), plane)
