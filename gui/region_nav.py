"""Walking the uncertain regions on the slice views: the region's box outlined (with its rank) on
every view whose slice crosses it, and each view zoomed to it. Regions come from
``inference.xai.uncertain_regions`` (index z, y, x boxes, inclusive-exclusive, on the image grid)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

OUTLINE = "#40e0ff"
MIN_FIELD_MM = 40.0  # zoomed no closer than this: the reviewer needs the region's surroundings too
MARGIN = 0.5  # half the box's size on each side


def display_box(model, region: dict) -> np.ndarray:
    """The region's box on the display grid: [[lo, hi] per display axis x, y, z] in continuous
    index units (voxel edges), through world coordinates, so any image orientation maps right."""
    (z0, z1), (y0, y1), (x0, x1) = region["bbox_zyx"]
    image = model.volume.geometry
    corners = np.array([[x, y, z] for x in (x0 - 0.5, x1 - 0.5) for y in (y0 - 0.5, y1 - 0.5)
                        for z in (z0 - 0.5, z1 - 0.5)], float)
    shown = np.array([model.display.grid.world_to_index(image.index_to_world(c)) for c in corners])
    return np.stack([shown.min(0), shown.max(0)], 1)


class RegionNav:
    """Outlines one region at a time on ``views`` (name -> SliceView) and zooms them to it."""

    def __init__(self, views: dict) -> None:
        self.views = views
        self.region: Optional[dict] = None
        self.total = 0
        self.items: dict[str, tuple] = {}
        for name, view in views.items():
            rect = QtWidgets.QGraphicsRectItem()
            pen = QtGui.QPen(QtGui.QColor(OUTLINE), 0)  # cosmetic: one pixel at any zoom
            pen.setStyle(QtCore.Qt.PenStyle.DashLine)
            rect.setPen(pen)
            rect.setZValue(50)
            text = pg.TextItem(color=OUTLINE, anchor=(0, 1))
            text.setZValue(50)
            view.viewbox.addItem(rect, ignoreBounds=True)
            view.viewbox.addItem(text, ignoreBounds=True)
            rect.hide()
            text.hide()
            self.items[name] = (rect, text)
            view.model.subscribe("cursor", lambda n=name: self._place(n))
            view.model.subscribe("image", self.clear)

    def show(self, region: dict, total: int) -> None:
        """Outline ``region`` (rank ``total``) and zoom every view to it."""
        self.region, self.total = region, total
        for name in self.views:
            self._place(name)
            self._zoom(name)

    def clear(self) -> None:
        self.region = None
        for rect, text in self.items.values():
            rect.hide()
            text.hide()

    def rect_of(self, name: str) -> Optional[QtCore.QRectF]:
        """The outline's scene rectangle on view ``name`` (mm in the view plane), if shown."""
        rect, _text = self.items[name]
        return rect.rect() if rect.isVisible() else None

    def _scene_box(self, name: str):
        view = self.views[name]
        box = display_box(view.model, self.region)
        grid = view.model.display
        r_axis, c_axis = grid.plane_axes(view.view)
        sr, sc = grid.plane_spacing(view.view)
        k = grid.sliced_axis(view.view)
        cut = bool(box[k, 0] <= view.model.slice_index(view.view) <= box[k, 1])
        return QtCore.QRectF(box[c_axis, 0] * sc, box[r_axis, 0] * sr, (box[c_axis, 1] - box[c_axis, 0]) * sc,
                             (box[r_axis, 1] - box[r_axis, 0]) * sr), cut

    def _place(self, name: str) -> None:
        rect, text = self.items[name]
        view = self.views[name]
        if self.region is None or view.model.display is None:
            return
        scene, cut = self._scene_box(name)
        rect.setRect(scene)
        rect.setVisible(cut)
        text.setText(f"region {self.region['rank']}/{self.total}")
        text.setPos(scene.left(), scene.top())
        text.setVisible(cut)

    def _zoom(self, name: str) -> None:
        view = self.views[name]
        scene, _cut = self._scene_box(name)
        whole = view._rect()  # never zoomed out beyond the image
        w = min(max(scene.width() * (1 + 2 * MARGIN), MIN_FIELD_MM), whole.width())
        h = min(max(scene.height() * (1 + 2 * MARGIN), MIN_FIELD_MM), whole.height())
        c = scene.center()
        view.viewbox.setRange(QtCore.QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)
