"""HiDPI (issue 20 item 8): the window, started in its own process at QT_SCALE_FACTOR 1, 1.5 and 2
on the test's 1600x1000 X screen (800x500 logical pixels at 2), is sized from the screen and fits
it, its screenshot is the window at the device pixel ratio, and the side panel does not scroll
sideways."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

ROOT = Path(__file__).resolve().parents[2]
PROBE = r"""
import json, sys
from PySide6 import QtCore, QtWidgets
from gui.app import make_app
from gui.main_window import MainWindow

app = make_app()
win = MainWindow(QtCore.QSettings(sys.argv[1] + "/settings.ini", QtCore.QSettings.Format.IniFormat))
win.show()
loop = QtCore.QEventLoop()
QtCore.QTimer.singleShot(800, loop.quit)  # laid out and painted (quit() would close the window)
loop.exec()
shot = win.screenshot()
shot.save(sys.argv[1] + "/window.png")
scroll = win.findChild(QtWidgets.QScrollArea)
sideways = []  # every tab, and every Edit tool (each shows its own rows)
for i in range(win.tabs.count()):
    win.tabs.setCurrentIndex(i)
    for tool in ([win.edit_panel.tool.itemText(k) for k in range(win.edit_panel.tool.count())] if i == 0 else [None]):
        if tool:
            win.edit_panel.tool.setCurrentText(tool)
        QtCore.QTimer.singleShot(150, loop.quit)
        loop.exec()
        if scroll.horizontalScrollBar().isVisible():
            sideways.append(f"{win.tabs.tabText(i)}/{tool}")
print(json.dumps({"frame": win.frameGeometry().getRect(), "screen": win.screen().availableGeometry().getRect(),
                  "ratio": win.devicePixelRatio(), "shot": [shot.width(), shot.height()],
                  "size": [win.width(), win.height()], "dock": scroll.width(),
                  "sideways": sideways}))
win.close()
"""


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    runs = {}

    def at(scale: str) -> dict:
        if scale not in runs:
            out = tmp_path_factory.mktemp(f"scale{scale}")
            env = dict(os.environ, QT_SCALE_FACTOR=scale, DELINEATE_STORE=str(out / "store"))
            done = subprocess.run([sys.executable, "-c", PROBE, str(out)], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
            runs[scale] = dict(json.loads(done.stdout.strip().splitlines()[-1]), png=out / "window.png")
        return runs[scale]
    return at


@pytest.mark.parametrize("scale", ["1", "1.5", "2"])
def test_the_window_fits_the_screen(started, scale):
    from PySide6 import QtGui

    got = started(scale)
    x, y, w, h = got["frame"]
    sx, sy, sw, sh = got["screen"]
    assert got["ratio"] == float(scale)
    assert abs(sw - 1600 / float(scale)) <= 1  # the logical screen shrinks with the scale
    assert sx <= x and sy <= y and x + w <= sx + sw and y + h <= sy + sh, (got["frame"], got["screen"])
    image = QtGui.QImage(str(got["png"]))
    # the screenshot is the whole window in device pixels
    assert (image.width(), image.height()) == tuple(got["shot"]) == \
        (round(got["size"][0] * float(scale)), round(got["size"][1] * float(scale)))


@pytest.mark.parametrize("scale", ["1", "1.5", "2"])
def test_the_side_panel_does_not_scroll_sideways(started, scale):
    got = started(scale)
    assert got["sideways"] == [], got
