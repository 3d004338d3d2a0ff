"""Start-up milestones for bench/startup.py, measured the same way in a source run and in the
packaged application (which runs no outside code): with ``DELINEATE_STARTUP_PROBE=window`` the app
prints ``WINDOW <seconds> <torch loaded 0/1>`` at the main window's first paint, with ``=segmented``
``SEGMENTED <seconds>`` once the first model run is on screen, and exits. Seconds count from
``DELINEATE_PROBE_T0`` (the parent's ``time.perf_counter()``, the system-wide monotonic clock on
Linux). Only numbers are printed; nothing about the image or patient."""
from __future__ import annotations

import os
import sys
import time

from PySide6 import QtCore, QtWidgets

VARIABLE = "DELINEATE_STARTUP_PROBE"


def wanted() -> str:
    return os.environ.get(VARIABLE, "")


def _report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # a benchmark child: nothing to save, and Qt/VTK teardown would only add noise


def _elapsed() -> float:
    return time.perf_counter() - float(os.environ.get("DELINEATE_PROBE_T0", "0") or 0)


class _FirstPaint(QtCore.QObject):
    def __init__(self, window: QtWidgets.QWidget) -> None:
        super().__init__(window)
        self.window = window

    def eventFilter(self, obj, event) -> bool:
        if (event.type() == QtCore.QEvent.Type.Paint and isinstance(obj, QtWidgets.QWidget)
                and obj.window() is self.window):
            _report(f"WINDOW {_elapsed():.4f} {int('torch' in sys.modules)}")
        return False


def install(app: QtWidgets.QApplication, window) -> None:
    """Before ``window.show()``: watch for the milestone named in the environment, if any."""
    what = wanted()
    if what == "window":
        app.installEventFilter(_FirstPaint(window))
    elif what == "segmented":
        from app.session import ModelRan

        # the views repaint in the next event-loop pass after the session takes the run
        window.session.subscribe(ModelRan, lambda _e: QtCore.QTimer.singleShot(
            0, lambda: _report(f"SEGMENTED {_elapsed():.4f}")))
