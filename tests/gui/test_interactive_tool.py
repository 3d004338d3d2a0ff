"""The Interactive tool in the real window (Xvfb), with the real classical engine: mouse events on a
slice view become prompts, the object shows on the views in its own layer, Accept writes it as one
undo step, a negative click takes a region away, a box on one slice gives a 3D object, 2D images
work, and a prompt outside the image is one line in the panel, not a traceback."""
import numpy as np
import pytest
from PySide6 import QtCore

from core.volume import Volume

pytest.importorskip("pytestqt")
pytest.importorskip("inference.interactive.classical")


def _phantom() -> Volume:
    """Two bright balls (radius 6 voxels) on a dark, slightly noisy background; anisotropic voxels."""
    z, y, x = np.mgrid[0:20, 0:48, 0:64]
    arr = np.random.default_rng(0).normal(0, 4, z.shape)
    arr[(z - 10) ** 2 * 4 + (y - 24) ** 2 + (x - 18) ** 2 <= 36] += 200  # z spacing 2 mm: balls in mm
    arr[(z - 10) ** 2 * 4 + (y - 24) ** 2 + (x - 46) ** 2 <= 36] += 200
    return Volume.from_array(arr.astype(np.int16), spacing=(1.0, 1.0, 2.0), origin=(-30.0, -20.0, 50.0),
                             modality="CT")


def _press_at(qtbot, view, col, row, button=QtCore.Qt.MouseButton.LeftButton,
              modifier=QtCore.Qt.KeyboardModifier.NoModifier):
    sr, sc = view.model.display.plane_spacing(view.view)
    pos = view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(col * sc, row * sr)))
    qtbot.mouseClick(view.graphics.viewport(), button, modifier, pos)


def _drag(qtbot, view, start, end, steps=6):
    sr, sc = view.model.display.plane_spacing(view.view)

    def at(c, r):
        return view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(c * sc, r * sr)))

    viewport = view.graphics.viewport()
    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, pos=at(*start))
    for t in np.linspace(0, 1, steps)[1:]:
        qtbot.mouseMove(viewport, pos=at(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])))
        qtbot.wait(20)  # pyqtgraph drops moves closer than 1/60 s apart
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, pos=at(*end))


def _settled(qtbot, tool, n_prompts):
    try:
        qtbot.waitUntil(lambda: not tool.busy and len(tool.prompts) == n_prompts and tool.has_object, timeout=30000)
    except Exception:
        raise AssertionError(f"{tool.busy} {tool.prompts} {tool.has_object} {tool.parent().problem.text()}")


def _start(qtbot, window, volume):
    qtbot.waitUntil(lambda: not window.tasks.busy, timeout=30000)  # the worklist's first read
    window.set_layout("2d")  # slices only: no software-rendered 3D view to wait for
    window.session.set_image(volume, "phantom")
    window.actions_by_id["tool_interactive"].trigger()  # I: the Interactive tool, point mode
    panel = window.edit_panel.interactive
    assert window.edit_panel.tool.currentText() == "Interactive" and panel.isVisible()
    assert panel.engine.currentData() is not None
    from inference.interactive.engine import engines, make_engine

    # the engine chosen at first is the one "auto" makes: the weaker network waits until named
    assert type(make_engine("auto")) is type(make_engine(panel.engine.currentData()))
    assert engines()[panel.engine.currentData()].auto

    for name, info in engines().items():  # engines not usable here: listed, disabled, with the reason
        item = panel.engine.model().item(panel.engine.findData(name))
        assert item.isEnabled() == (info.available() is None)
        assert item.toolTip() == (info.available() or info.title)
    panel.engine.setCurrentIndex(panel.engine.findData("classical"))
    return panel, panel.tool


def test_click_shows_the_object_accept_is_one_undo_step_and_a_negative_click_removes(qtbot, window):
    vol = _phantom()
    panel, tool = _start(qtbot, window, vol)
    axial = window.views["axial"]
    window.model.set_cursor_index((18, 24, 10))  # the balls' middle slice
    _press_at(qtbot, axial, 18, 24)
    _settled(qtbot, tool, 1)
    left = np.zeros(vol.array.shape, bool)
    left[:, :, :32] = True
    mask = tool.obj.mask
    assert mask[10, 24, 18] and not (mask & ~left).any()  # the left ball only
    assert not (mask & (vol.array < 100)).any() and mask.any(axis=(1, 2)).sum() >= 3  # inside it, in 3D
    shown = window.edit_panel.interactive.tool.overlays["axial"].mask_item.source
    assert shown is not None and shown[24, 18] and not shown[24, 46]  # drawn on the view, in its own layer
    assert window.model.labels is None  # nothing written yet
    assert "Interactive (classical):" in window.statusBar().currentMessage()

    # a second positive click takes the right ball too; a right click in it takes a region back out
    _press_at(qtbot, axial, 46, 24)
    _settled(qtbot, tool, 2)
    both = tool.obj.mask.copy()
    assert both[10, 24, 46] and both[10, 24, 18]
    # the negative click: inside the right part, two voxels off the positive click (a voxel of the
    # object the engine found, so the test does not depend on how far it grew)
    yy, xx = np.nonzero(both[10] & ~left[10])
    far = np.hypot(yy - 24, xx - 46)
    n = int(np.argmin(np.abs(far - 2.0)))
    row, col = int(yy[n]), int(xx[n])
    _press_at(qtbot, axial, col, row, QtCore.Qt.MouseButton.RightButton)
    _settled(qtbot, tool, 3)
    mask = tool.obj.mask
    assert not mask[10, row, col] and mask.sum() < both.sum() and not (mask & ~both).any()
    assert np.array_equal(mask & left, both & left)  # far from the click nothing changed
    assert tool.prompts.items[-1].positive is False
    spots = tool.overlays["axial"].markers.data
    assert len(spots) == 3 and len({str(b.color().name()) for b in spots["brush"]}) == 2  # green and red
    # Ctrl+click is negative as well
    _press_at(qtbot, axial, 48, 22, modifier=QtCore.Qt.KeyboardModifier.ControlModifier)
    _settled(qtbot, tool, 4)
    assert tool.prompts.items[-1].positive is False
    # Ctrl+Z while building takes back the last prompt, not an edit
    window.actions_by_id["undo"].trigger()
    assert len(tool.prompts) == 3

    # Enter in a number field is that field's; in a view it accepts the object, with no segmentation
    # yet: a segment is made, the object goes in as one undo step
    expected = tool.obj.mask.copy()
    window.activateWindow()  # shortcuts go to the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.edit_panel.amount.setFocus()
    qtbot.keyClick(window.edit_panel.amount, QtCore.Qt.Key.Key_Return)
    assert tool.has_object and window.session.labelmap is None
    axial.graphics.setFocus()
    qtbot.keyClick(axial.graphics.viewport(), QtCore.Qt.Key.Key_Return)
    lm = window.session.labelmap
    assert lm is not None and np.array_equal(lm.array == 1, expected)
    assert not tool.has_object and tool.overlays["axial"].mask_item.source is None
    assert window.session.interactions[-1]["points"] == 3
    window.actions_by_id["undo"].trigger()
    assert not window.session.labelmap.array.any()
    window.actions_by_id["redo"].trigger()
    assert np.array_equal(window.session.labelmap.array == 1, expected)


def test_box_on_one_slice_gives_a_3d_object_replace_and_bad_prompts_are_one_line(qtbot, window):
    from inference.interactive.prompts import Point

    vol = _phantom()
    panel, tool = _start(qtbot, window, vol)
    tool.add(Point(tuple(vol.geometry.index_to_world([18, 24, 10]))))  # the left ball, into segment 1
    _settled(qtbot, tool, 1)
    panel.accept()
    left = window.session.labelmap.array == 1
    assert left[10, 24, 18]
    window.actions_by_id["interactive_box"].trigger()
    assert tool.mode == "box"
    axial = window.views["axial"]
    window.model.set_cursor_index((46, 24, 10))
    _drag(qtbot, axial, (38, 16), (54, 32))
    _settled(qtbot, tool, 1)
    mask = tool.obj.mask
    assert mask[10, 24, 46] and not mask[:, :, :32].any()
    assert set(np.flatnonzero(mask.any(axis=(1, 2)))) >= {9, 10, 11}  # beyond the slice drawn on (10)
    # the box is drawn on the slice it lies on; the object on the coronal view too
    assert not tool.overlays["axial"].shapes[True].path().isEmpty()
    window.model.set_cursor_index((46, 24, 9))
    assert tool.overlays["coronal"].mask_item.source.any()
    # Replace: segment 1 becomes the object (the left ball leaves it), as one undo step
    panel.replace.setChecked(True)
    panel.accept()
    assert np.array_equal(window.session.labelmap.array == 1, mask)
    window.actions_by_id["undo"].trigger()
    assert np.array_equal(window.session.labelmap.array == 1, left)
    tool.add(Point(tuple(vol.geometry.index_to_world([46, 24, 10]))))
    _settled(qtbot, tool, 1)
    # Esc starts a new object
    window.actions_by_id["interactive_new"].trigger()
    assert not tool.has_object and len(tool.prompts) == 0
    # a prompt outside the image: one line in the panel and the status bar; nothing changes
    tool.add(Point((500.0, 500.0, 500.0)))
    qtbot.waitUntil(lambda: not tool.busy and bool(panel.problem.text()), timeout=30000)
    assert "outside the image" in panel.problem.text() and "\n" not in panel.problem.text()
    assert len(tool.prompts) == 0 and window._last_error is None


def test_a_2d_image(qtbot, window):
    y, x = np.mgrid[0:80, 0:100]
    arr = np.where((y - 40) ** 2 + (x - 50) ** 2 <= 15 ** 2, 180, 20).astype(np.uint8)
    vol = Volume.from_array(arr, spacing=(0.3, 0.3, 1.0), modality="US")
    panel, tool = _start(qtbot, window, vol)
    window.actions_by_id["interactive_lasso"].trigger()
    axial = window.views["axial"]
    t = np.linspace(0, 2 * np.pi, 16)
    sr, sc = axial.model.display.plane_spacing("axial")
    viewport = axial.graphics.viewport()

    def at(c, r):
        return axial.graphics.mapFromScene(axial.viewbox.mapViewToScene(QtCore.QPointF(c * sc, r * sr)))

    qtbot.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, pos=at(50 + 18, 40))
    for a in t[1:]:
        qtbot.mouseMove(viewport, pos=at(50 + 18 * np.cos(a), 40 + 18 * np.sin(a)))
        qtbot.wait(20)
    qtbot.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, pos=at(50 + 18, 40))
    _settled(qtbot, tool, 1)
    disc = arr[np.newaxis] > 100
    mask = tool.obj.mask
    assert mask.shape == (1, 80, 100)
    drawn = np.hypot(y - 40, x - 50)[np.newaxis] <= 18.5
    assert (mask & disc).sum() / disc.sum() > 0.9 and not (mask & ~drawn).any()  # the disc, inside the lasso
    assert not tool.overlays["axial"].shapes[True].path().isEmpty()  # the lasso drawn where it was drawn
    panel.accept()
    assert np.array_equal(window.session.labelmap.array == 1, mask)
    # a scribble across the disc is one prompt of many points, positive
    window.actions_by_id["interactive_scribble"].trigger()
    _drag(qtbot, axial, (42, 40), (58, 42))
    _settled(qtbot, tool, 1)
    scribble = tool.prompts.items[0]
    assert type(scribble).__name__ == "Scribble" and scribble.positive and len(scribble.lps) >= 4
    assert (tool.obj.mask & disc).sum() > 0.5 * disc.sum()


def test_box_and_lasso_on_an_oblique_image_lie_on_one_of_its_slices(qtbot, window):
    from inference.interactive.prompts import Box, Lasso, rasterise
    from tests.conftest import rotation

    src = _phantom()
    vol = Volume.from_array(src.array, spacing=src.geometry.spacing, origin=src.geometry.origin,
                            direction=rotation(0.25, 0.15, 0.3), modality="CT")
    panel, tool = _start(qtbot, window, vol)
    centre = vol.geometry.index_to_world([46, 24, 10])  # the right ball
    d = window.model.display.grid
    c = d.world_to_index(centre)
    window.model.set_cursor_world(centre)
    k = window.model.slice_index("axial")
    corners = [np.array([c[0] + dx, c[1] + dy, k]) for dx, dy in ((-9, -9), (9, 9))]
    window.actions_by_id["interactive_box"].trigger()
    tool.on_view("axial", corners[0], "start")
    tool.on_view("axial", (corners[0] + corners[1]) / 2, "drag")
    tool.on_view("axial", corners[1], "finish")
    _settled(qtbot, tool, 1)
    box = tool.prompts.items[0]
    assert isinstance(box, Box)
    ijk = vol.geometry.world_to_index(np.array([box.lps_min, box.lps_max]))
    assert np.isclose(ijk[0, 2], ijk[1, 2]) and np.isclose(ijk[0, 2], np.rint(ijk[0, 2]))  # one image slice
    mask = tool.obj.mask
    assert mask[10, 24, 46] and mask.any(axis=(1, 2)).sum() >= 3 and not mask[:, :, :32].any()
    window.actions_by_id["interactive_new"].trigger()
    window.actions_by_id["interactive_lasso"].trigger()
    t = np.linspace(0, 2 * np.pi, 12)
    ring = [np.array([c[0] + 8 * np.cos(a), c[1] + 8 * np.sin(a), k]) for a in t]
    tool.on_view("axial", ring[0], "start")
    for p in ring[1:-1]:
        tool.on_view("axial", p, "drag")
    tool.on_view("axial", ring[-1], "finish")
    _settled(qtbot, tool, 1)
    assert isinstance(tool.prompts.items[0], Lasso)
    assert rasterise(tool.prompts, vol.geometry).box_mask.any()  # drawn on one slice: no PromptError
    assert tool.obj.mask[10, 24, 46]
