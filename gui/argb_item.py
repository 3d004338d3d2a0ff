"""A scene item showing a premultiplied ARGB32 pixel array over a rectangle in millimetres.

pyqtgraph's ImageItem converts (and for indexed overlays re-converts at every paint); these
layers hand Qt the exact format its raster engine blends fastest, built by core.render2d. An
opaque layer (the image itself) is handed over as RGB32, which Qt scales by copying, not blending.
The QImage wraps the array without copying; a layer that refills the same buffer keeps it.

A layer may be given the function that colours it instead of its pixels (``fill_later``): it runs
when the item is painted, so that Qt reads each layer's megabyte just after NumPy wrote it, not
after the other layers and views of a crosshair move went through the cache (~12 % of a crosshair
move in the viewer bench), and a view that is not painted colours nothing."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

_FORMATS = {False: QtGui.QImage.Format.Format_ARGB32_Premultiplied, True: QtGui.QImage.Format.Format_RGB32}


class ArgbItem(QtWidgets.QGraphicsItem):
    def __init__(self, opaque: bool = False) -> None:
        super().__init__()
        self._rect = QtCore.QRectF()
        self._qimage: Optional[QtGui.QImage] = None
        self._argb: Optional[np.ndarray] = None
        self._fill: Optional[Callable[[], np.ndarray]] = None  # colours the layer when it is next painted
        self._format = _FORMATS[opaque]  # opaque: every pixel's alpha is 255
        self.source: Optional[np.ndarray] = None  # the plane shown, before colouring (tests, probes)
        # until its first pixels Qt neither asks the item's bounding rectangle nor paints it: each a
        # call into Python, 18 a crosshair move for the overlays no tool has drawn into yet. Not set
        # again once cleared: Qt would then skip the repaint that wipes the last pixels
        self._never_drawn = True
        self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)

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
        self._fill = None
        if argb is not None:
            self._drawn()
        if argb is None:
            if self._qimage is None:
                return False  # nothing shown before either: no repaint (overlays clear their items on every move)
            self._argb = self._qimage = None
        elif argb is not self._argb or self._qimage is None:
            self._argb = np.ascontiguousarray(argb, dtype=np.uint32)
            h, w = self._argb.shape
            self._qimage = QtGui.QImage(self._argb.data, w, h, 4 * w, self._format)
        if update:
            self.update()
        return True

    def fill_later(self, fill: Callable[[], np.ndarray], source: Optional[np.ndarray] = None) -> None:
        """Show ``fill()`` (ARGB pixels of ``source``), called when the item is next painted or its
        pixels are asked for; the owner repaints. ``fill`` may refill the buffer shown now."""
        self.source = source
        self._fill = fill
        self._drawn()

    def _drawn(self) -> None:
        if self._never_drawn:
            self._never_drawn = False
            self.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, False)

    def _realize(self) -> None:
        if self._fill is not None:
            fill, self._fill = self._fill, None
            self.set_pixels(fill(), self.source, update=False)

    def clear(self, update: bool = True) -> bool:
        return self.set_pixels(None, update=update)

    @property
    def has_pixels(self) -> bool:
        """Whether anything is shown or about to be, without colouring a pending layer."""
        return self._qimage is not None or self._fill is not None

    @property
    def qimage(self) -> Optional[QtGui.QImage]:
        self._realize()
        return self._qimage

    @property
    def _pixels(self) -> Optional[np.ndarray]:  # the ARGB array shown (tests)
        self._realize()
        return self._argb

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        self._realize()
        if self._qimage is not None:
            painter.drawImage(self._rect, self._qimage)
