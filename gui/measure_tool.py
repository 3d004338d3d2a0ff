"""The Measure tool on the slice views: ruler (two clicks, or a drag), angle (three clicks: arm,
vertex, arm), ellipse ROI (drag its bounding box). While measuring, dragging a point of a measurement
on the shown slice moves it (an ellipse's centre moves the whole ellipse), RECIST axes included. Mouse positions become LPS mm through the display
grid (the same mapping as the Interactive tool), so values are exact on oblique and anisotropic
images; the measurements live on the case session (app.actions.measuring) and show on every view
whose slice they lie on."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6 import QtCore

from app.actions import measuring
from app.session import CaseSession, ImageOpened, MeasurementsChanged
from core.errors import DelineateError
from core.measurements import Measurement, text, values

MODES = {"ruler": 2, "angle": 3, "ellipse": 2}  # points (clicks, or a drag's ends) per measurement
_MIN_MM = 0.5  # a drag shorter than this is a click
_GRAB_PX = 8  # a drag starting this close (screen pixels) to a measurement's point moves that point


class MeasureTool(QtCore.QObject):
    started = QtCore.Signal()  # a mode was chosen: the editing tools let go of the left button
    mode_changed = QtCore.Signal(object)  # the mode or None
    failed = QtCore.Signal(str)

    def __init__(self, session: CaseSession, shell=None, parent=None) -> None:
        super().__init__(parent)
        self.session, self.shell = session, shell
        self.mode: Optional[str] = None
        self.views: dict = {}
        self.overlays: dict = {}
        self._pending: list[np.ndarray] = []  # LPS points of the measurement being drawn
        self._view: Optional[str] = None
        self._moving: Optional[tuple[int, int, np.ndarray]] = None  # measurement, point, LPS where the drag began
        session.subscribe(MeasurementsChanged, lambda _e: self.redraw())
        session.subscribe(ImageOpened, lambda _e: self._cancel())

    def attach(self, views: dict) -> None:
        from gui.measure_overlay import MeasureOverlay

        self.views = views
        self.overlays = {name: MeasureOverlay(view) for name, view in views.items()}

    def set_mode(self, mode: Optional[str]) -> None:
        """Start measuring (``mode`` in MODES) or stop (None): the views' left button is ours meanwhile."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown measure mode {mode!r}")
        self._cancel()
        if mode is not None:
            self.started.emit()  # first: the edit panel's Navigate resets the views' handlers
        was, self.mode = self.mode, mode
        for view in self.views.values():
            if mode is not None:
                view.left_handler = self.on_view
                view.setCursor(QtCore.Qt.CursorShape.CrossCursor)
            elif was is not None and view.left_handler == self.on_view:
                view.left_handler = None
                view.setCursor(QtCore.Qt.CursorShape.ArrowCursor)
        if mode != was:
            self.mode_changed.emit(mode)

    def _world(self, display_ijk) -> np.ndarray:
        return self.session.viewer.display.grid.index_to_world(np.asarray(display_ijk, dtype=np.float64))

    def on_view(self, view: str, display_ijk, phase: str) -> None:
        if self.mode is None or self.session.volume is None:
            return
        p = self._world(display_ijk)
        if phase == "start" and not self._pending:
            self._moving = self._grab(view, p)
        if self._moving is not None:
            self._move(p, phase)
            return
        if view != self._view:  # points of one measurement are on one view's slice
            self._cancel()
            self._view = view
        if phase == "click":
            self._pending.append(p)
        elif phase == "start":
            if not self._pending:
                self._pending.append(p)
            self._pending.append(p)  # the end that follows the mouse
        elif self._pending:
            self._pending[-1] = p
            if phase == "finish" and np.linalg.norm(p - self._pending[-2]) < _MIN_MM:
                self._pending.pop()  # a click that moved a little
        self._sketch()
        done = len(self._pending) >= MODES[self.mode] and phase in ("click", "finish")
        if done:
            self._finish()

    def _grab(self, view: str, p: np.ndarray) -> Optional[tuple[int, int, np.ndarray]]:
        """The measurement point on this view's slice nearest ``p``, if within a few screen pixels."""
        sv = self.views.get(view)
        if sv is None:
            return None
        reach = _GRAB_PX * sv.viewbox.viewPixelSize()[0]
        best = None
        for n, m in enumerate(self.session.measurements):
            _xy, on = sv.world_to_scene(m.array)
            if on.all():
                d = np.linalg.norm(m.array - p, axis=1)
                k = int(np.argmin(d))
                if d[k] <= reach and (best is None or d[k] < best[0]):
                    best = (d[k], n, k)
        return None if best is None else (best[1], best[2], self.session.measurements[best[1]].array)

    def _move(self, p: np.ndarray, phase: str) -> None:
        n, k, start = self._moving
        if phase == "finish":
            self._moving = None
        pts = start.copy()
        if self.session.measurements[n].kind == "ellipse" and k == 0:
            pts += p - start[0]  # the centre carries the ellipse
        else:
            pts[k] = p
        old = self.session.measurements[n]
        m = Measurement(old.kind, tuple(map(tuple, pts)), old.label)
        measuring.replace(self.session, n, m)
        if phase == "finish":
            self.report(m)

    def _sketch(self) -> None:
        overlay = self.overlays.get(self._view)
        if overlay is None:
            return
        if self.mode == "ellipse" and len(self._pending) == 2:
            overlay.draw_sketch(self._ellipse_points(*self._pending), ellipse=True)
        else:
            overlay.draw_sketch(np.array(self._pending) if len(self._pending) > 1 else None)

    def _ellipse_points(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Centre and semi-axis ends of the ellipse inscribed in the box with corners a, b on the view
        (display axes are LPS axes, so the box's sides run along the view's two world axes)."""
        d = self.session.viewer.display
        r_axis, c_axis = d.plane_axes(self._view)
        c = (a + b) / 2
        u, v = np.zeros(3), np.zeros(3)
        u[c_axis], v[r_axis] = (b - a)[c_axis] / 2, (b - a)[r_axis] / 2
        return np.array([c, c + u, c + v])

    def _finish(self) -> None:
        pts = np.array(self._pending)
        if self.mode == "ellipse":
            pts = self._ellipse_points(pts[0], pts[1])
        self._cancel()
        try:
            m = Measurement(self.mode, tuple(map(tuple, pts)))
            if self.mode == "ellipse" and values(m)["area_mm2"] <= 0:
                return
            measuring.add(self.session, m)
        except DelineateError as exc:
            self.failed.emit(f"Measure: {exc}")
            return
        self.report(m)

    def report(self, m: Measurement) -> None:
        """The status bar reads this measurement's own value (drawn, moved, or RECIST from the panel),
        never the one before it."""
        if self.shell is not None:
            self.shell.message(f"Measure: {m.kind}: {text(m, values(m, self.session.volume)).replace(chr(10), '; ')}",
                               15000)

    def _cancel(self) -> None:
        self._pending = []
        for overlay in self.overlays.values():
            overlay.draw_sketch(None)

    def redraw(self) -> None:
        for overlay in self.overlays.values():
            overlay.show(self.session.measurements, self.session.volume)
