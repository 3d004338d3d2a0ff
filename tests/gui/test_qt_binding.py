"""Guards against a Qt binding that corrupts the interpreter: PySide6 6.12.0 dropped a reference
to True on every Signal.emit(), so on Python < 3.12 the app aborted at exit ("bool_dealloc")."""
import sys

from PySide6 import QtCore


class _Emitter(QtCore.QObject):
    changed = QtCore.Signal()


def test_signal_emit_keeps_bool_refcounts():
    e = _Emitter()
    e.changed.connect(lambda: None)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        e.changed.emit()
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert abs(after[0] - before[0]) < 50 and abs(after[1] - before[1]) < 50, (
        f"the installed PySide6 leaks bool references on emit ({before} -> {after}); see requirements.txt")
