"""A scene item showing a premultiplied ARGB32 pixel array over a rectangle in millimetres.

pyqtgraph's ImageItem converts (and for indexed overlays re-converts at every paint); these
layers hand Qt the exact format its raster engine blends fastest, built by core.render2d."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets


class ArgbItem(QtWidgets.QGraphicsItem):
    def __init__(self) -> None:
        super().__init__()
        self._rect = QtCore.QRectF()
        self._qimage: Optional[QtGui.QImage] = None
        self._pixels: Optional[np.ndarray] = None
        self.source: Optional[np.ndarray] = None  # the plane shown, before colouring (tests, probes)

    def set_rect(self, rect: QtCore.QRectF) -> None:
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QtCore.QRectF(rect)

    def set_pixels(self, argb: Optional[np.ndarray], source: Optional[np.ndarray] = None) -> None:
        self.source = source
        if argb is None:
            self._pixels = self._qimage = None
        else:
            self._pixels = np.ascontiguousarray(argb, dtype=np.uint32)
            h, w = self._pixels.shape
            self._qimage = QtGui.QImage(self._pixels.data, w, h, 4 * w,
                                        QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        self.update()

    def clear(self) -> None:
        self.set_pixels(None)

    @property
    def qimage(self) -> Optional[QtGui.QImage]:
        return self._qimage

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        if self._qimage is not None:
            painter.drawImage(self._rect, self._qimage)
