"""Long work off the UI thread: a task runs ``fn(progress, cancel, partial)`` in a QThread while the
status bar shows a progress bar and a Cancel button. Results come back on the UI thread.

Each task carries its own callbacks (a relay object living on the UI thread), so whatever a task
emits reaches that task's callbacks and no other's. Starting a task while one runs supersedes the
running one: it is asked to cancel and left to wind down in the background - the UI thread never
waits for a worker. A superseded task's progress and partial results are dropped, and so is the
Cancelled its supersession caused; its result or real error still reaches its own callbacks
(work such as a save that finished anyway is reported).
"""
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
        finally:
            self.thread().quit()  # the thread's event loop ends; its finished signal cleans up


class _Relay(QtCore.QObject):
    """One task's callbacks, on the UI thread: the task's signals arrive here queued."""

    def __init__(self, bar: "TaskBar", on_done: Callable, on_error: Callable,
                 on_partial: Optional[Callable]) -> None:
        super().__init__(bar)
        self.bar, self.on_done, self.on_error, self.on_partial = bar, on_done, on_error, on_partial
        self.superseded = False

    @QtCore.Slot(float, str)
    def progressed(self, fraction: float, message: str) -> None:
        if not self.superseded:
            self.bar._progress(fraction, message)

    @QtCore.Slot(object)
    def partial(self, value) -> None:
        if not self.superseded and self.on_partial is not None:
            self.on_partial(value)

    @QtCore.Slot(object)
    def done(self, value) -> None:
        self._finish(self.on_done, value)

    @QtCore.Slot(object)
    def failed(self, exc) -> None:
        if self.superseded and isinstance(exc, Cancelled):
            self._finish(None, exc)  # the cancel its supersession asked for: nobody is waiting for it
        else:
            self._finish(self.on_error, exc)

    def _finish(self, callback: Optional[Callable], value) -> None:
        self.bar._finished(self)
        if callback is not None:
            callback(value)


class TaskBar(QtWidgets.QWidget):
    """Progress bar + Cancel for the status bar; shows one task at a time (the latest)."""

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
        self._current: Optional[_Relay] = None
        self._tasks: dict[_Relay, tuple[_Task, QtCore.QThread]] = {}
        self._threads: dict[QtCore.QThread, _Task] = {}  # kept alive until each thread has finished
        self.setVisible(False)

    @property
    def busy(self) -> bool:
        """The latest task has not delivered its outcome yet."""
        return self._current is not None

    @property
    def running(self) -> int:
        """Worker threads still running, superseded ones included."""
        return sum(not t.isFinished() for t in self._threads)

    def start(self, title: str, fn: Callable, on_done: Callable, on_error: Callable,
              on_partial: Optional[Callable] = None) -> None:
        if self._current is not None:
            self._supersede(self._current)
        task = _Task(fn)
        thread = QtCore.QThread()
        task.moveToThread(thread)
        relay = _Relay(self, on_done, on_error, on_partial)
        thread.started.connect(task.run)
        # the relay lives on the UI thread: Qt queues each emission onto it, in order
        task.progressed.connect(relay.progressed)
        task.partial.connect(relay.partial)
        task.done.connect(relay.done)
        task.failed.connect(relay.failed)
        thread.finished.connect(self._reap)  # queued onto the UI thread: this bar lives there
        self._current = relay
        self._tasks[relay] = (task, thread)
        self._threads[thread] = task
        self.label.setText(title)
        self.bar.setValue(0)
        self.bar.setFormat("%p%")
        self.setVisible(True)
        thread.start()

    def _supersede(self, relay: _Relay) -> None:
        relay.superseded = True
        task, _thread = self._tasks.get(relay, (None, None))
        if task is not None:
            task.cancel.cancel()
        self._current = None

    @QtCore.Slot(float, str)
    def _progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if message:
            self.bar.setFormat(f"{message}  %p%")

    def _finished(self, relay: _Relay) -> None:
        self._tasks.pop(relay, None)
        relay.deleteLater()
        if relay is self._current:
            self._current = None
            self.setVisible(False)

    @QtCore.Slot()
    def _reap(self) -> None:
        for thread in [t for t in self._threads if t.isFinished()]:
            del self._threads[thread]  # finished: Python's reference was the last one

    def cancel(self) -> None:
        """Ask the latest task to stop; its Cancelled reaches its own error callback."""
        if self._current is not None:
            task, _thread = self._tasks.get(self._current, (None, None))
            if task is not None:
                task.cancel.cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        """At shutdown only: cancel every task and wait for the threads (never during use - the UI
        thread does not wait on workers); -1: as long as it takes (a running QThread must not be
        destroyed). True when all have stopped."""
        for relay in list(self._tasks):
            self._tasks[relay][0].cancel.cancel()
        deadline = QtCore.QDeadlineTimer(timeout_ms)
        stopped = all(thread.wait(deadline) for thread in list(self._threads))
        if stopped:
            self._threads.clear()
            self._tasks.clear()
            self._current = None
        return stopped
