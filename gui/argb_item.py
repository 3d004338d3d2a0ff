"""A scene item showing a premultiplied ARGB32 pixel array over a rectangle in millimetres.

pyqtgraph's ImageItem converts (and for indexed overlays re-converts at every paint); these
layers hand Qt the exact format its raster engine blends fastest, built by core.render2d. An
opaque layer (the image itself) is handed over as RGB32, which Qt scales by copying, not blending.
The QImage wraps the array without copying; a layer that refills the same buffer keeps it."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

_FORMATS = {False: QtGui.QImage.Format.Format_ARGB32_Premultiplied, True: QtGui.QImage.Format.Format_RGB32}


class ArgbItem(QtWidgets.QGraphicsItem):
    def __init__(self, opaque: bool = False) -> None:
        super().__init__()
        self._rect = QtCore.QRectF()
        self._qimage: Optional[QtGui.QImage] = None
        self._pixels: Optional[np.ndarray] = None
        self._format = _FORMATS[opaque]  # opaque: every pixel's alpha is 255
        self.source: Optional[np.ndarray] = None  # the plane shown, before colouring (tests, probes)

    def set_rect(self, rect: QtCore.QRectF) -> None:
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QtCore.QRectF(rect)

    def set_pixels(self, argb: Optional[np.ndarray], source: Optional[np.ndarray] = None,
                   update: bool = True) -> bool:
        """Show ``argb``; whether anything on screen may have changed. ``update=False``: the owner
        repaints the view itself (a scene's update request makes Qt paint and flush the window at
        once, one view at a time; a slice view marks its viewport instead, so that one repaint of
        the window draws every view a crosshair move changed)."""
        self.source = source
        if argb is None:
            if self._qimage is None:
                return False  # nothing shown before either: no repaint (overlays clear their items on every move)
            self._pixels = self._qimage = None
        elif argb is not self._pixels or self._qimage is None:
            self._pixels = np.ascontiguousarray(argb, dtype=np.uint32)
            h, w = self._pixels.shape
            self._qimage = QtGui.QImage(self._pixels.data, w, h, 4 * w, self._format)
        if update:
            self.update()
        return True

    def clear(self, update: bool = True) -> bool:
        return self.set_pixels(None, update=update)

    @property
    def qimage(self) -> Optional[QtGui.QImage]:
        return self._qimage

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        if self._qimage is not None:
            painter.drawImage(self._rect, self._qimage)
