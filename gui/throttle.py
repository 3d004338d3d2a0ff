"""At most one call per display frame: the first of a burst at once, the last when the frame is up.

A crosshair drag or a fast wheel sends events back to back (Qt compresses mouse moves to one per
pass of the event loop); a read-out that follows them, such as the status bar's probe, repainted
at every one costs a text layout and a repaint each (~0.15-0.3 ms a step of the viewer bench)
for values nobody can read at that rate. At the rate a hand moves a mouse wheel or a key repeats
(< 60 a second) every call still runs at once."""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

from PySide6 import QtCore

FRAME_S = 1 / 60


class Throttle:
    def __init__(self, fn: Callable[..., Any], interval_s: float = FRAME_S,
                 parent: Optional[QtCore.QObject] = None) -> None:
        self._fn, self._interval = fn, interval_s
        self._last = -1e9
        self._pending: tuple = ()
        # a child of the widget whose read-out it updates: gone with it, so a call held back when
        # the window is destroyed never reaches deleted widgets
        self._timer = QtCore.QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)

    def __call__(self, *args) -> None:
        wait = self._last + self._interval - time.perf_counter()
        if wait <= 0 and not self._timer.isActive():
            self._run(args)
            return
        self._pending = args  # the newest wins: the read-out shows where the burst ended
        if not self._timer.isActive():
            self._timer.start(max(1, int(wait * 1000 + 0.5)))

    def flush(self) -> None:
        """Run the call held back, if any, now."""
        self._timer.stop()
        if self._pending:
            args, self._pending = self._pending, ()
            self._run(args)

    def cancel(self) -> None:
        """Drop the call held back, if any (it would show a state that is gone)."""
        self._timer.stop()
        self._pending = ()

    def _run(self, args: tuple) -> None:
        self._last = time.perf_counter()
        self._fn(*args)
