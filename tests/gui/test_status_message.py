"""The status bar's transient message belongs to the image it was about: opening another image
clears it (a "Paint: … voxels changed" or a loop's warning stayed over the next image), while the
new image's own warnings, and a message shown after the opening was asked for (Next case's "Saved
correction …"), still show."""
import numpy as np
import pytest
from PIL import Image

from core.volume import Volume
from formats import samples

pytest.importorskip("pytestqt")


def _open(qtbot, win, path):
    with qtbot.waitSignal(win.loaded, timeout=60000):
        win.opener.open_path(str(path))


def _png(path):
    Image.fromarray(np.full((50, 60), 100, np.uint8)).save(path)
    return path


def _said(win) -> str:
    return win.statusBar().currentMessage()


def test_opening_another_image_clears_the_last_images_message_and_shows_its_own_warnings(qtbot, window, tmp_path):
    _open(qtbot, window, samples.path("us-2frame"))
    assert window.model.volume.warnings and _said(window).startswith("Warning: ")  # the loop's own warning
    _open(qtbot, window, _png(tmp_path / "a.png"))
    assert _said(window) == ""  # not the loop's warning over a PNG
    window.shell.message("Paint: 410 voxels changed on 1 image slice (Segment 1 +410)", 15000)
    _open(qtbot, window, _png(tmp_path / "b.png"))
    assert _said(window) == ""
    _open(qtbot, window, samples.path("us-2frame"))
    assert _said(window).startswith("Warning: ")


def test_a_message_shown_after_the_opening_was_asked_for_stays(qtbot, window):
    """Next case saves the case left, says so, then opens the next one: the save's message stays."""
    first = Volume.from_array(np.zeros((4, 8, 8), np.int16))
    window.session.set_image(first, "first")
    window.shell.message("Paint: 12 voxels changed", 15000)
    window.worklist.save_current(lambda: window.shell.message("Saved correction 1 of case c1 (in review)", 15000))
    window.session.set_image(Volume.from_array(np.ones((4, 8, 8), np.int16)), "second")
    assert _said(window) == "Saved correction 1 of case c1 (in review)"
    window.session.set_image(first, "third")  # asked for by nobody: nothing outlives the image
    assert _said(window) == ""
