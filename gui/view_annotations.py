"""Text and the scale bar painted over a slice view, readable and never clipped: labels are drawn
with a dark outline (readable over bright bone and dark air alike, as Slicer's corner text is), and
the scale bar's label gets the width its text needs, kept inside the view; a view too narrow for
it gets no scale bar rather than a cut one. Layout and QPainter calls, for gui.slice_view."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PySide6 import QtCore, QtGui

from core.display import LETTERS
from core.planar import plane_name, plane_view
from core.time_series import time_series_of

VIEW_COLORS = {"axial": "#e05050", "coronal": "#50c050", "sagittal": "#e0c040"}  # Slicer's red/green/yellow

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


def view_title(volume, view: str, k: int, n: int) -> str:
    """What a view is called on screen: the anatomical plane and slice, or for a 2D image or cine
    loop shown whole, "Image" (and its frame) - never "Axial" for an ultrasound frame or a photo."""
    if volume.is_planar and view == plane_view(volume.geometry):
        name = plane_name(volume)
        return f"{name}  frame {k + 1}/{n}" if volume.is_cine else name
    series = time_series_of(volume)  # the time point before the slice: a title piece per time point, not per slice
    when = f"  t{series.shown + 1}/{series.count}" if series is not None else ""
    return f"{view.capitalize()}{when}  {k + 1}/{n}"


class ViewAnnotations:
    """Orientation letters, scale bar and slice title of a slice view (``owner``: a SliceView),
    painted by its viewport after the scene (as an overlay widget they cost each repaint ~0.5 ms
    more: Qt composes a transparent widget over the view separately). Each is drawn once into a
    cached image (the title once per slice number); a repaint of the image beneath (every slice
    change) only blends the cached pixels of the dirty part instead of laying out and outlining
    every text again."""

    TITLE_HEIGHT = 18
    STRIP = 8  # viewport pixels: a repaint this thin is a crosshair line's strip

    def __init__(self, owner) -> None:
        self.owner = owner
        self._layer: Optional[QtGui.QImage] = None
        self._layer_key = None
        self._boxes: list[tuple] = []  # (where the layer has pixels in viewport pixels, the same in the layer's)
        self._reach: Optional[list] = None  # every box and the title band: where this layer can have pixels
        self._stamps: Optional[OutlinedStamps] = None  # the title's pieces, at the screen's dpr
        self._serial = 0  # counts the view's zooms and pans (the scale bar's length follows them)
        self._shown_key = None
        self._title = ""
        # what changes only with the view's size, zoom, font or image (not with its slice): looked
        # up again on every slice change it cost ~0.05 ms a view
        self._frame_key = self._frame_font = None
        self._frame: tuple = ()  # (font, scene mm per screen pixel)

    def range_changed(self) -> None:
        self._serial += 1
        self.owner.graphics.viewport().update()

    def paint(self, p: QtGui.QPainter, r: QtCore.QRectF) -> None:
        """Onto ``p`` in viewport pixels, within ``r`` (what Qt repaints)."""
        o = self.owner
        if o.model.display is None:
            return
        # the strip a crosshair line left or entered (another view's slice change), away from every
        # letter, the scale bar and the title: nothing of this layer is there. Anything that changes
        # what the layer shows (this view's slice, zoom, size, image) repaints the whole view first
        if (min(r.width(), r.height()) <= self.STRIP and self._reach is not None
                and not any(r.intersects(b) for b in self._reach)):
            return
        viewport = o.graphics.viewport()
        w, h, dpr = viewport.width(), viewport.height(), viewport.devicePixelRatioF()
        # a repaint under an unchanged slice, size and zoom (the other views' slice changes move a
        # crosshair line under it) draws what it drew last time without laying out any text
        shown = (id(o.model.display), o.model.slice_index(o.view), w, h, dpr, self._serial,
                 o.model.volume.metadata.get("time_point"))
        if shown != self._shown_key:
            self._title = self._prepare(w, h, dpr)
            self._shown_key = shown
        whole = QtCore.QRectF(r.toAlignedRect())  # whole pixels: a fractional rectangle would resample the layer
        for box, source in self._boxes:  # the layer is transparent elsewhere: blending all of it cost ~0.3 ms a view
            if whole.contains(box):  # a whole repaint: its source rectangle is kept
                p.drawImage(box, self._layer, source)
                continue
            part = box.intersected(whole)
            if not part.isEmpty():
                p.drawImage(part, self._layer,
                            QtCore.QRectF(part.x() * dpr, part.y() * dpr, part.width() * dpr, part.height() * dpr))
        if r.top() < self.TITLE_HEIGHT + 4:
            p.save()
            p.setClipRect(QtCore.QRect(4, 0, max(1, w - 8), self.TITLE_HEIGHT + 4), QtCore.Qt.ClipOperation.IntersectClip)
            self._stamps.draw(p, QtCore.QRect(6, 2, max(1, w - 12), self.TITLE_HEIGHT), self._title)
            p.restore()

    def _prepare(self, w: int, h: int, dpr: float) -> str:
        """The letters' and scale bar's layer (kept in ``_layer``) and the title."""
        o = self.owner
        vol = o.model.volume
        frame = (w, h, dpr, self._serial, id(o.model.display))
        font = o.font()  # compared, not keyed: QFont.key() builds a string (~4 us a view a slice)
        if frame != self._frame_key or font != self._frame_font:
            self._frame_key, self._frame_font = frame, font
            self._frame = (self._font(), o.viewbox.viewPixelSize()[0])
        font, mm_per_px = self._frame
        if self._stamps is None or (self._stamps.font, self._stamps.dpr) != (font, dpr):
            self._stamps = OutlinedStamps(font, QtGui.QColor(VIEW_COLORS[o.view]), dpr)
        title = view_title(vol, o.view, o.model.slice_index(o.view), o.model.display.n_slices(o.view))
        if self._stamps.width(title) > w - 12 and title.split()[0] in ("Axial", "Coronal", "Sagittal"):
            title = title[:3] + " " + title.split(None, 1)[1]  # "Cor 117/233": the slice number stays whole
        # in a narrow view the top letter would sit on the title: it moves a line down instead
        top_y = 20 if 6 + self._stamps.width(title) + 4 > w // 2 - 8 else 2
        key = (w, h, dpr, vol.orientation_known, not vol.spacing_known, mm_per_px, top_y)
        if key != self._layer_key:
            self._layer, self._layer_key = self._static_layer(*key), key
            self._boxes = [(b, QtCore.QRectF(b.x() * dpr, b.y() * dpr, b.width() * dpr, b.height() * dpr))
                           for b in drawn_boxes(self._layer)]
            self._reach = [QtCore.QRectF(0, 0, w, self.TITLE_HEIGHT + 4)] + [b for b, _source in self._boxes]
        return title

    def _image(self, w: int, h: int, dpr: float) -> tuple[QtGui.QImage, QtGui.QPainter]:
        image = QtGui.QImage(max(1, int(np.ceil(w * dpr))), max(1, int(np.ceil(h * dpr))),
                             QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        image.fill(QtCore.Qt.GlobalColor.transparent)
        p = QtGui.QPainter(image)
        p.setFont(self._font())
        return image, p

    def _font(self, bold: bool = False) -> QtGui.QFont:
        f = QtGui.QFont(self.owner.font())
        f.setPointSize(10)
        f.setBold(bold)
        return f

    def _static_layer(self, w: int, h: int, dpr: float, oriented: bool, pixels: bool,
                      mm_per_px: float, top_y: int) -> QtGui.QImage:
        layer, p = self._image(w, h, dpr)
        p.setFont(self._font(bold=True))
        # no patient letters where the file gives no orientation (ultrasound, photographs)
        left, right, top, bottom = LETTERS[self.owner.view] if oriented else ("", "", "", "")
        letter = QtGui.QColor("#f0f0a0")
        align = QtCore.Qt.AlignmentFlag
        draw_outlined(p, QtCore.QRect(4, 0, 20, h), align.AlignVCenter, left, letter)
        draw_outlined(p, QtCore.QRect(w - 20, 0, 16, h), align.AlignVCenter, right, letter)
        draw_outlined(p, QtCore.QRect(0, top_y, w, 16), align.AlignHCenter, top, letter)
        draw_outlined(p, QtCore.QRect(0, h - 18, w, 16), align.AlignHCenter, bottom, letter)
        p.setFont(self._font())
        bar = scale_bar(w, h, mm_per_px, p.fontMetrics(), pixels=pixels)
        if bar is not None:  # none in a view too narrow for bar and text whole
            draw_scale_bar(p, bar, QtGui.QColor("#f0f0f0"))
        p.end()
        return layer


def drawn_boxes(image: QtGui.QImage) -> list[QtCore.QRectF]:
    """Rectangles (in the image's device-independent pixels) covering every pixel of a premultiplied
    ARGB ``image`` that is not fully transparent: bands of rows with any such pixel, each cut into
    runs of columns. Blending only these leaves the rest exactly as it was (a transparent pixel
    changes nothing it is blended over)."""
    h, w, dpr = image.height(), image.width(), image.devicePixelRatio()
    words = np.frombuffer(image.constBits(), np.uint32, count=h * image.bytesPerLine() // 4)
    alpha = words.reshape(h, -1)[:, :w] >> 24
    boxes = []
    for top, bottom in _runs(alpha.any(axis=1)):
        for left, right in _runs(alpha[top:bottom].any(axis=0)):
            # whole pixels of the view, as the repainted rectangles are (a fractional one could be
            # resampled differently at a fractional scale factor)
            x0, y0 = math.floor(left / dpr), math.floor(top / dpr)
            boxes.append(QtCore.QRectF(x0, y0, math.ceil(right / dpr) - x0, math.ceil(bottom / dpr) - y0))
    return boxes


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.r_[0, flags.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


class OutlinedStamps:
    """Outlined text (as ``draw_outlined``, left-aligned, centred vertically) stamped from images of
    its pieces, each drawn once: a view's title changes with every slice, and laying it out and
    outlining it again (six drawText calls) cost 0.1-0.5 ms a view each time. The pieces: all up to
    the last space as one (kerned as written), each character of the slice number, and "/count" as
    one (the same on every slice of a view: two stamps instead of eight for "/300", ~0.02 ms a view
    a slice change)."""

    _OUTLINE = ((-1, 0), (1, 0), (0, -1), (0, 1), (1, 1))  # as draw_outlined

    def __init__(self, font: QtGui.QFont, colour: QtGui.QColor, dpr: float) -> None:
        self.font, self.colour, self.dpr = QtGui.QFont(font), colour, dpr
        self.metrics = QtGui.QFontMetricsF(self.font)
        self._pieces: dict[str, tuple[QtGui.QImage, QtGui.QImage, float]] = {}  # outline, text, advance
        # per text: its width, and per place the (point, image) stamps in drawing order (a view's
        # titles: one per slice, and the same ones again when scrolling back)
        self._widths: dict[str, float] = {}
        self._placed: dict[tuple, list] = {}

    @staticmethod
    def split(text: str) -> list[str]:
        head, sep, tail = text.rpartition(" ")
        number, slash, count = tail.partition("/")
        digits = list(number) if number.isdigit() else [number] if number else []  # "Image": one piece
        return ([head + sep] if sep else []) + digits + ([slash + count] if slash else [])

    def _piece(self, text: str) -> tuple[QtGui.QImage, QtGui.QImage, float]:
        got = self._pieces.get(text)
        if got is None:
            advance = self.metrics.horizontalAdvance(text)
            w, h = int(math.ceil(advance)) + 4, int(math.ceil(self.metrics.height())) + 2
            images = []
            for pens in ((QtGui.QColor(0, 0, 0, 220), self._OUTLINE), (self.colour, ((0, 0),))):
                image = QtGui.QImage(int(math.ceil(w * self.dpr)), int(math.ceil(h * self.dpr)),
                                     QtGui.QImage.Format.Format_ARGB32_Premultiplied)
                image.setDevicePixelRatio(self.dpr)
                image.fill(QtCore.Qt.GlobalColor.transparent)
                p = QtGui.QPainter(image)
                p.setFont(self.font)
                p.setPen(pens[0])
                for dx, dy in pens[1]:
                    p.drawText(QtCore.QRectF(1 + dx, 1 + dy, w - 2, h - 2), QtCore.Qt.AlignmentFlag.AlignLeft, text)
                p.end()
                images.append(image)
            got = self._pieces[text] = (images[0], images[1], advance)
        return got

    def width(self, text: str) -> float:
        got = self._widths.get(text)
        if got is None:
            if len(self._widths) > 4096:
                self._widths.clear()
            got = self._widths[text] = sum(self._piece(t)[2] for t in self.split(text))
        return got

    def draw(self, painter: QtGui.QPainter, rect: QtCore.QRect, text: str) -> None:
        key = (text, rect.left(), rect.top(), rect.height())
        stamps = self._placed.get(key)
        if stamps is None:
            if len(self._placed) > 4096:
                self._placed.clear()
            pieces = [self._piece(t) for t in self.split(text)]
            y = int(rect.top() + (rect.height() - self.metrics.height()) / 2)  # as Qt centres it, less the margin
            stamps = []
            for which in (0, 1):  # every outline first: no piece's outline over its neighbour's text
                x = rect.left() - 1.0
                for piece in pieces:
                    stamps.append((QtCore.QPoint(round(x), y), piece[which]))
                    x += piece[2]
            self._placed[key] = stamps
        for point, image in stamps:
            painter.drawImage(point, image)
