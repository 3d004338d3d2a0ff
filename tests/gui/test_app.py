"""The window opens on the bundled sample and shows pixels (under Xvfb via pytest-xvfb)."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")


def test_window_shows_sample_slice(qtbot):
    from formats import samples
    from formats.io import read_image
    from gui.app import build_window

    vol = read_image(samples.path("mni152-t1"))
    win = build_window(vol)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    view, img, slider, label = win._keep
    assert slider.value() == vol.geometry.size[2] // 2
    slider.setValue(60)
    assert "slice 61/" in label.text()
    np.testing.assert_array_equal(img.image, vol.array[60].T)
    shot = view.grab().toImage()
    w, h = shot.width(), shot.height()
    centre = shot.pixelColor(w // 2, h // 2)
    corner = shot.pixelColor(2, 2)
    assert centre != corner  # brain tissue in the middle, background in the corner
