"""The status bar's probe follows a crosshair drag at display rate: a burst of moves repaints it
less often than it moves, and where the burst ended shows within a frame."""
import time

import numpy as np
from PySide6 import QtWidgets

from gui.throttle import FRAME_S, Throttle


SLOW = 0.25  # the unit tests' interval: far longer than a stall of a busy machine between two calls


def test_a_burst_runs_the_first_call_at_once_and_the_last_after_the_interval(qtbot):
    calls = []
    throttle = Throttle(calls.append, SLOW)
    for i in range(10):
        throttle(i)
    assert calls == [0]  # the first at once; the others held back, the newest kept
    qtbot.waitUntil(lambda: calls == [0, 9], timeout=3000)
    time.sleep(1.2 * SLOW)
    throttle(10)  # an interval after the last: at once again (a hand on a wheel is never held back)
    assert calls == [0, 9, 10]


def test_flush_runs_the_held_call_now_and_cancel_drops_it(qtbot):
    calls = []
    throttle = Throttle(calls.append, SLOW)
    throttle("a")
    throttle("b")
    throttle.flush()
    throttle.flush()  # nothing held: nothing runs
    assert calls == ["a", "b"]
    throttle("stale")  # within the interval of "b": held back
    throttle.cancel()
    qtbot.wait(int(2 * SLOW * 1000))
    assert calls == ["a", "b"]


def test_a_crosshair_drag_updates_the_probe_less_often_than_it_moves_and_ends_where_it_stopped(window, qtbot):
    from core.volume import Volume

    arr = (np.arange(30 * 40 * 50) % 200).astype(np.int16).reshape(30, 40, 50)
    window.session.set_image(Volume.from_array(arr, spacing=(1.0, 1.0, 2.0), modality="CT"), "phantom")
    app = QtWidgets.QApplication.instance()
    app.processEvents()
    texts = []
    window.probe_label.setText = lambda text, real=window.probe_label.setText: (texts.append(text), real(text))
    time.sleep(2 * FRAME_S)
    start = time.perf_counter()
    for i in range(20):  # moves back to back, as Qt delivers a fast drag
        window.model.set_cursor_index([5 + i, 6 + i, 7])
        app.processEvents()
    frames = (time.perf_counter() - start) / FRAME_S
    assert 1 <= len(texts) <= frames + 2, (len(texts), frames)  # at most one a frame, whatever the machine
    qtbot.waitUntil(lambda: window.probe_label.text().startswith("voxel (24, 25, 7)"), timeout=1000)
