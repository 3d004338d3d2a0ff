"""The task runner: each task's result, error and cancellation reach its own callbacks only, and
superseding a task never makes the UI thread wait for it."""
import time


from core.errors import Cancelled, DelineateError


def _until_cancelled(progress, cancel, partial):
    partial("A's first slice")
    while True:
        cancel.check()
        time.sleep(0.005)


def _events(name, log):
    return dict(on_done=lambda v: log.append((name, "done", v)), on_error=lambda e: log.append((name, "error", e)),
                on_partial=lambda v: log.append((name, "partial", v)))


def test_a_superseded_tasks_cancel_never_reaches_the_next_task(qtbot, bar):
    log = []
    bar.start("A", _until_cancelled, **_events("A", log))
    qtbot.waitUntil(lambda: ("A", "partial", "A's first slice") in log, timeout=5000)
    bar.start("B", lambda p, c, part: (time.sleep(0.2), 42)[1], **_events("B", log))
    qtbot.waitUntil(lambda: not bar.busy and bar.running == 0, timeout=5000)
    assert [e for e in log if e[0] == "B"] == [("B", "done", 42)]
    assert [e for e in log if e[0] == "A"] == [("A", "partial", "A's first slice")]  # its Cancelled was asked for


def test_a_superseded_tasks_own_result_and_error_reach_its_own_callbacks(qtbot, bar):
    log = []

    def finishes_anyway(p, c, part):  # a save that does not stop half-way
        time.sleep(0.3)
        part("too late to show")
        return "saved"

    def fails_anyway(p, c, part):
        time.sleep(0.3)
        raise DelineateError("disk full")

    bar.start("A", finishes_anyway, **_events("A", log))
    bar.start("B", fails_anyway, **_events("B", log))
    bar.start("C", lambda p, c, part: "c", **_events("C", log))
    qtbot.waitUntil(lambda: bar.running == 0 and len(log) == 3, timeout=5000)
    assert sorted((n, k, str(v)) for n, k, v in log) == [("A", "done", "saved"), ("B", "error", "disk full"),
                                                        ("C", "done", "c")]


def test_cancel_reaches_the_current_tasks_own_error_callback(qtbot, bar):
    log = []
    bar.start("A", _until_cancelled, **_events("A", log))
    qtbot.waitUntil(lambda: len(log) == 1, timeout=5000)
    bar.cancel()
    qtbot.waitUntil(lambda: not bar.busy, timeout=5000)
    assert [k for _n, k, _v in log] == ["partial", "error"] and isinstance(log[-1][2], Cancelled)
    assert not bar.isVisible()


def test_the_ui_thread_keeps_running_while_a_superseded_worker_stops(qtbot, bar):
    from PySide6 import QtWidgets

    log = []

    def slow_to_stop(p, c, part):  # looks at its cancel token only once a second
        for _ in range(3):
            time.sleep(0.4)
        c.check()

    bar.start("A", slow_to_stop, **_events("A", log))
    time.sleep(0.05)
    t0 = time.perf_counter()
    bar.start("B", lambda p, c, part: "b", **_events("B", log))
    start_s = time.perf_counter() - t0
    gaps, last, end = [], time.perf_counter(), time.perf_counter() + 1.5
    while time.perf_counter() < end:  # the event loop turning, as the UI thread does
        QtWidgets.QApplication.processEvents()
        time.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    assert ("B", "done", "b") in log and bar.running == 0
    print(f"start() while A stops: {start_s * 1000:.1f} ms; longest event-loop gap {max(gaps) * 1000:.1f} ms")
    assert start_s < 0.1 and max(gaps) < 0.25
