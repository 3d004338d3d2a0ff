"""The 3D view stays off the crosshair's path (issue 20 item 6): with volume rendering on, crosshair
moves return to the event loop without rendering; once the crosshair rests the view renders once
coarsely and once at full quality, showing the last position; a newer move cancels a pending
full-quality render."""
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")


def _ct_with_segments():
    from core.labels import LabelMap, LabelTable
    from core.volume import Volume

    z, y, x = np.mgrid[:60, :96, :96]
    body = ((y - 48) / 40.0) ** 2 + ((x - 48) / 44.0) ** 2 < 1
    bone = ((y - 70) / 8.0) ** 2 + ((x - 48) / 8.0) ** 2 < 1
    arr = np.where(bone, 700, np.where(body, 40, -1000)).astype(np.int16)
    vol = Volume.from_array(arr, spacing=(1.0, 1.0, 2.5), modality="CT")
    labels = (body.astype(np.uint8) + bone).astype(np.uint8)
    return vol, LabelMap(labels, vol.geometry, LabelTable.from_names(["body", "spine"]))


def _phantom_in_3d(window, labels=True):
    """(3D view, volume, label map) with the phantom open in the window (skips without VTK)."""
    view3d = window.view3d
    if not view3d.available:
        pytest.skip("no display for VTK")
    vol, lm = _ct_with_segments()
    window.session.set_image(vol, "phantom")
    if labels:
        window.session.set_labelmap(lm)
    return view3d, vol, lm


def _rest(qtbot, view3d, timeout=20000):
    qtbot.waitUntil(lambda: not view3d.render_pending, timeout=timeout)


def test_crosshair_moves_never_wait_for_the_3d_render(window, qtbot):
    from PySide6 import QtWidgets

    view3d, _vol, _lm = _phantom_in_3d(window)
    assert window.volume_check.isChecked() and view3d._volume_actor.GetVisibility()  # the CT default
    _rest(qtbot, view3d)
    app = QtWidgets.QApplication.instance()
    before = dict(view3d.renders)

    blocked = []
    for step in range(10):
        t0 = time.perf_counter()
        window.model.set_cursor_index([30 + step, 40 + step, 10 + step])
        app.processEvents()  # paints the slice views
        blocked.append(time.perf_counter() - t0)
        assert view3d.renders == before  # nothing rendered in 3D while the crosshair moves
    assert view3d.render_pending
    assert max(blocked) < 0.5
    last = window.model.cursor_world()

    _rest(qtbot, view3d)
    assert view3d.renders == {"coarse": before["coarse"] + 1, "full": before["full"] + 1}
    np.testing.assert_allclose(view3d.rendered_cursor, last)  # the picture shows the last position
    src, _actor = view3d._plane_actors["axial"]
    assert src.GetOrigin()[2] == pytest.approx(last[2])

    # a move after the coarse render cancels the full-quality one it would have been followed by
    window.model.set_cursor_index([20, 20, 20])
    qtbot.waitUntil(lambda: view3d.renders["coarse"] == before["coarse"] + 2, timeout=20000)
    window.model.set_cursor_index([25, 25, 25])
    _rest(qtbot, view3d)
    assert view3d.renders == {"coarse": before["coarse"] + 3, "full": before["full"] + 2}
    np.testing.assert_allclose(view3d.rendered_cursor, window.model.cursor_world())


def test_coarse_render_restores_full_quality(window, qtbot):
    """The coarse pass lowers the volume mapper's rays and steps only for itself."""
    view3d, _vol, _lm = _phantom_in_3d(window, labels=False)
    _rest(qtbot, view3d)
    mapper = view3d._volume_actor.GetMapper()
    step = mapper.GetSampleDistance()
    window.model.set_cursor_index([10, 10, 10])
    _rest(qtbot, view3d)
    assert mapper.GetAutoAdjustSampleDistances() == 1 and mapper.GetImageSampleDistance() == 1.0
    assert mapper.GetSampleDistance() == step
    frame = view3d.screenshot()
    red = np.array([frame.pixelColor(x, frame.height() // 2).red() for x in range(0, frame.width(), 4)])
    assert red.std() > 5  # the volume is drawn, not a flat background


def test_3d_view_draws_from_bounded_copies(window, qtbot, monkeypatch):
    """What the 3D view holds besides the image: a strided int16 copy for the volume rendering (no
    float copy), and display meshes in 32-bit cell arrays."""
    import gui.view3d as view3d_module
    from vtkmodules.util.numpy_support import vtk_to_numpy

    monkeypatch.setattr(view3d_module, "VOLUME_RENDER_MAX_VOXELS", 60 * 96 * 96 // 8)
    view3d, vol, _lm = _phantom_in_3d(window)
    image = view3d._volume_actor.GetMapper().GetInput()
    assert image.GetDimensions() == (48, 48, 30)  # every second voxel
    scalars = vtk_to_numpy(image.GetPointData().GetScalars())
    assert scalars.dtype == np.int16 and scalars.size * 2 <= vol.array.nbytes // 8
    np.testing.assert_array_equal(scalars.reshape(30, 48, 48), vol.array[::2, ::2, ::2])
    polys = [p.GetPolys() for p in view3d.surfaces.polydata.values()]
    assert len(polys) == 2 and all(c.IsStorageFixedSize32Bit() for c in polys)
    _rest(qtbot, view3d)


def _pixels(image) -> np.ndarray:
    """A QImage's pixels (its rows are padded to 4 bytes)."""
    rows = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), -1)
    return rows[:, :image.width() * image.depth() // 8].copy()


def test_software_gl_draws_the_actors_one_at_a_time_into_the_same_frame(window, qtbot):
    """With llvmpipe each actor's triangles are drawn before the next actor's are taken in (a frame's
    triangles held all at once were the top of the window's peak memory with the 3D view); the frame
    is pixel for pixel the one drawn in one go: volume rendering, surfaces, translucent heat shells."""
    from core.overlay import HeatMap

    view3d, vol, _lm = _phantom_in_3d(window)
    z, y, x = np.mgrid[:60, :96, :96]
    blob = np.exp(-(((x - 48) ** 2 + (y - 40) ** 2) / 300.0 + (z - 30) ** 2 / 100.0)).astype(np.float32)
    window.model.add_heatmap(HeatMap.from_values("saliency", blob, vol.geometry, 0.0, 1.0, threshold=0.1))
    window.model.set_visible(1, False)  # the body's surface would hide the shells and the spine
    _rest(qtbot, view3d)
    if not view3d.software_gl:
        pytest.skip("hardware GL: actors are drawn in one go")
    assert all(a.GetMapper().waits_for_earlier_draws for a in view3d.renderer.GetActors())
    frames = {}
    for one_at_a_time in (True, False):
        view3d.software_gl = one_at_a_time
        frames[one_at_a_time] = _pixels(view3d.screenshot())
    view3d.software_gl = True
    np.testing.assert_array_equal(frames[True], frames[False])
    assert frames[True].std() > 5 and len(window.heat_panel.map3d.actors) == 2  # drawn, not a flat background


def test_mouse_interaction_in_3d_ends_with_one_full_quality_render(window, qtbot):
    """Rotating renders at the interactive rate, also on release; full quality follows the rest."""
    view3d, _vol, _lm = _phantom_in_3d(window, labels=False)
    _rest(qtbot, view3d)
    interactor = view3d.window.GetInteractor()
    assert interactor.GetStillUpdateRate() == interactor.GetDesiredUpdateRate()
    before = dict(view3d.renders)
    interactor.GetInteractorStyle().InvokeEvent("EndInteractionEvent")
    assert view3d.render_pending
    _rest(qtbot, view3d)
    assert view3d.renders == {"coarse": before["coarse"], "full": before["full"] + 1}
    assert view3d.window.GetDesiredUpdateRate() < 0.001


def test_a_crosshair_move_paints_each_view_once_title_included(window, qtbot):
    """Qt paints each slice view once per move (an overlay update before the other views' scenes
    reported their changes made it paint two of them twice), and the title's new slice number is
    painted (with the view, over its scene) also where the zoomed-out image does not reach it."""
    from PySide6 import QtCore, QtWidgets

    vol, lm = _ct_with_segments()
    window.session.set_image(vol, "phantom")
    window.session.set_labelmap(lm)
    app = QtWidgets.QApplication.instance()
    views = list(window.views.values())
    for v in views:
        v.viewbox.scaleBy((4, 4))  # the image a small patch in the middle, far from the title
    app.processEvents()
    paints = {id(v.graphics.viewport()): [] for v in views}
    titled = {v.view: [] for v in views}  # the annotations are painted by the viewport, after the scene
    for v in views:
        v.annotations.paint = lambda p, r, _v=v, _paint=v.annotations.paint: (titled[_v.view].append(r.toRect()),
                                                                             _paint(p, r))

    class Spy(QtCore.QObject):
        def eventFilter(self, obj, ev):
            if ev.type() == QtCore.QEvent.Type.Paint and id(obj) in paints:
                paints[id(obj)].append(QtCore.QRect(ev.rect()))
            return False

    spy = Spy()
    app.installEventFilter(spy)
    try:
        window.model.set_cursor_index([20, 30, 15])
        app.processEvents()
    finally:
        app.removeEventFilter(spy)
    for v in views:
        (rect,) = paints[id(v.graphics.viewport())]
        (titled_rect,) = titled[v.view]
        assert rect.contains(QtCore.QRect(6, 2, 60, 16)), v.view  # where the title is written
        assert titled_rect.contains(QtCore.QRect(6, 2, 60, 16)), v.view


def test_a_hidden_heat_map_is_not_drawn_on_slice_changes(window):
    """With one map shown at a time, the others are neither gathered, coloured nor painted."""
    from core.overlay import HeatMap

    vol, _lm = _ct_with_segments()
    window.session.set_image(vol, "phantom")
    ramp = np.broadcast_to(np.linspace(0, 1, 96, dtype=np.float32), vol.array.shape)
    window.model.add_heatmap(HeatMap.from_values("first", ramp, vol.geometry, 0.0, 1.0))
    window.model.add_heatmap(HeatMap.from_values("second", ramp[:, ::-1], vol.geometry, 0.0, 1.0))
    axial = window.views["axial"]
    first, second = axial.heat_items
    assert not first.isVisible() and first.qimage is None  # the newest map is the one shown
    assert second.isVisible() and second.source.shape == axial.image_item.source.shape
    window.model.scroll("axial", 1)
    assert first.qimage is None
    np.testing.assert_array_equal(second.source, window.model.heat_display(window.model.heatmaps[1])[
        window.model.slice_index("axial")])
    window.model.set_active_heatmap("first")
    assert first.isVisible() and first.qimage is not None and not second.isVisible()
