"""Long work off the UI thread: a task runs ``fn(progress, cancel, partial)`` in a QThread while the
status bar shows a progress bar and a Cancel button. Results come back on the UI thread."""
from __future__ import annotations

import traceback
from typing import Callable, Optional

from PySide6 import QtCore, QtWidgets

from core.errors import Cancelled
from core.progress import CancelToken


class _Task(QtCore.QObject):
    progressed = QtCore.Signal(float, str)
    partial = QtCore.Signal(object)
    done = QtCore.Signal(object)
    failed = QtCore.Signal(object)

    def __init__(self, fn: Callable) -> None:
        super().__init__()
        self.fn = fn
        self.cancel = CancelToken()

    @QtCore.Slot()
    def run(self) -> None:
        try:
            result = self.fn(lambda f, m="": self.progressed.emit(float(f), str(m)), self.cancel, self.partial.emit)
        except Cancelled as exc:
            self.failed.emit(exc)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
            exc.trace = traceback.format_exc()
            self.failed.emit(exc)
        else:
            self.done.emit(result)


class TaskBar(QtWidgets.QWidget):
    """Progress bar + Cancel for the status bar; runs one task at a time."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.label = QtWidgets.QLabel()
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(220)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.bar, self.cancel_button):
            lay.addWidget(w)
        self._callbacks: tuple = (None, None, None)
        self._thread: Optional[QtCore.QThread] = None
        self._task: Optional[_Task] = None
        self.setVisible(False)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, title: str, fn: Callable, on_done: Callable, on_error: Callable,
              on_partial: Optional[Callable] = None) -> None:
        if self.busy:
            self.cancel()
            self.wait()
        task = _Task(fn)
        thread = QtCore.QThread()
        task.moveToThread(thread)
        thread.started.connect(task.run)
        task.progressed.connect(self._progress)
        # bound slots of this UI-thread object: Qt queues the calls onto the UI thread
        task.partial.connect(self._partial)
        task.done.connect(self._done)
        task.failed.connect(self._failed)
        self._callbacks = (on_done, on_error, on_partial)
        self._thread, self._task = thread, task
        self.label.setText(title)
        self.bar.setValue(0)
        self.setVisible(True)
        thread.start()

    @QtCore.Slot(float, str)
    def _progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if message:
            self.bar.setFormat(f"{message}  %p%")

    @QtCore.Slot(object)
    def _partial(self, value) -> None:
        if self._callbacks[2] is not None:
            self._callbacks[2](value)

    @QtCore.Slot(object)
    def _done(self, value) -> None:
        self._finish(self._callbacks[0], value)

    @QtCore.Slot(object)
    def _failed(self, exc) -> None:
        self._finish(self._callbacks[1], exc)

    def _finish(self, callback: Callable, value) -> None:
        self.wait()
        self.setVisible(False)
        callback(value)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel.cancel()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread, self._task = None, None
