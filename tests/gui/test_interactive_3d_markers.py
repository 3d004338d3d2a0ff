"""The Interactive tool beyond the slice it works on: the object under construction shows in the 3D
view as a surface of its own (after each prompt, gone on Accept and New object), and prompts stay in
sight on slices within a few mm of theirs (faded), on every view, oblique and anisotropic grids too."""
import numpy as np
import pytest

from core.volume import Volume
from tests.gui.test_interactive_tool import _phantom, _settled, _start

pytest.importorskip("pytestqt")
pytest.importorskip("inference.interactive.classical")


def _oblique() -> Volume:
    from tests.conftest import rotation

    src = _phantom()  # anisotropic: 1 x 1 x 2 mm
    return Volume.from_array(src.array, spacing=src.geometry.spacing, origin=src.geometry.origin,
                             direction=rotation(0.25, 0.15, 0.3), modality="CT")


def _object_actor(qtbot, view3d):
    qtbot.waitUntil(lambda: not view3d.object.pending, timeout=30000)
    actor, layer = view3d.object.actor, view3d.object.renderer
    actors = layer.GetActors() if layer is not None else None
    shown = [actors.GetItemAsObject(i) for i in range(actors.GetNumberOfItems())] if actors is not None else []
    assert shown == ([actor] if actor is not None else [])  # the newest object only, in the object's layer
    return actor


@pytest.mark.parametrize("oblique", [False, True])
def test_the_object_shows_in_3d_after_a_prompt_and_leaves_on_accept_and_new_object(qtbot, window, oblique):
    from gui.interactive_overlay import OBJECT_RGB
    from inference.interactive.prompts import Point

    vol = _oblique() if oblique else _phantom()
    panel, tool = _start(qtbot, window, vol)
    view3d = window.view3d
    if not view3d.available:
        pytest.skip("no display for VTK")
    view3d.set_volume_visible(False)  # software GL: surfaces and planes only, quick renders
    assert _object_actor(qtbot, view3d) is None
    left = vol.geometry.index_to_world([18, 24, 10])  # the left ball's centre, LPS mm
    tool.add(Point(tuple(left)))
    _settled(qtbot, tool, 1)
    actor = _object_actor(qtbot, view3d)
    assert actor is not None and view3d.object.seconds is not None
    assert np.allclose(actor.GetProperty().GetColor(), np.array(OBJECT_RGB) / 255)
    # the surface sits around the left ball in patient space (the actor's bounds are LPS mm): its
    # radius is 6 mm; the right ball (28 mm away) is not in it
    lo, hi = np.array(actor.GetBounds()).reshape(3, 2).T
    assert np.all(lo < left) and np.all(left < hi) and np.all(hi - lo < 20)
    right = vol.geometry.index_to_world([46, 24, 10])
    assert not np.all((lo < right) & (right < hi))
    # a second prompt: the object grows, the surface follows (one actor, the newest object)
    tool.add(Point(tuple(right)))
    _settled(qtbot, tool, 2)
    grown = _object_actor(qtbot, view3d)
    lo, hi = np.array(grown.GetBounds()).reshape(3, 2).T
    assert np.all((lo < right) & (right < hi)) and np.all((lo < left) & (left < hi))
    # undoing the prompt shows the previous object again
    tool.undo_prompt()
    lo, hi = np.array(_object_actor(qtbot, view3d).GetBounds()).reshape(3, 2).T
    assert not np.all((lo < right) & (right < hi))
    # Accept: the object is a segment now (its own surface), not an object under construction
    panel.accept()
    assert window.session.labelmap is not None and (window.session.labelmap.array == 1).any()
    assert _object_actor(qtbot, view3d) is None
    # New object drops it too
    tool.add(Point(tuple(right)))
    _settled(qtbot, tool, 1)
    assert _object_actor(qtbot, view3d) is not None
    window.actions_by_id["interactive_new"].trigger()
    assert _object_actor(qtbot, view3d) is None


def _markers(overlay):
    """(filled on-slice spots, off-slice rings) drawn on ``overlay``'s view."""
    from PySide6 import QtCore

    if not overlay.markers.isVisible():
        return 0, 0
    data = overlay.markers.data
    filled = sum(b.style() != QtCore.Qt.BrushStyle.NoBrush for b in data["brush"])
    return filled, len(data) - filled


def _off_slice_mm(window, view, lps) -> float:
    d = window.model.display
    axis = d.sliced_axis(view)
    ijk = d.grid.world_to_index(np.asarray(lps, dtype=np.float64))
    return abs(ijk[axis] - window.model.slice_index(view)) * d.grid.spacing[axis]


@pytest.mark.parametrize("oblique", [False, True])
def test_prompts_show_faded_a_few_mm_off_their_slice_and_not_far_away(qtbot, window, oblique):
    from gui.interactive_overlay import NEAR_MM
    from inference.interactive.prompts import Lasso, Point, Prompts

    vol = _oblique() if oblique else _phantom()
    _panel, tool = _start(qtbot, window, vol)
    point = np.asarray(vol.geometry.index_to_world([18, 24, 10]), dtype=np.float64)
    ring = [tuple(vol.geometry.index_to_world([46 + 5 * np.cos(a), 24 + 5 * np.sin(a), 10]))
            for a in np.linspace(0, 2 * np.pi, 12)[:-1]]
    prompts = Prompts().add(Point(tuple(point))).add(Lasso(tuple(ring)))
    for overlay in tool.overlays.values():  # as the tool draws a request's prompts (no engine needed)
        overlay.show(None, prompts)

    window.model.set_cursor_world(point)
    for name, overlay in tool.overlays.items():
        assert _markers(overlay) == (1, 0), name  # on its slice: a solid marker, on every view
    # 2 mm off along every axis: each view shows the point as a faded ring (off its slice, near it)
    window.model.set_cursor_world(point + 2.0)
    d = window.model.display
    for name, overlay in tool.overlays.items():
        half_slice = 0.5 * d.grid.spacing[d.sliced_axis(name)]
        assert half_slice < _off_slice_mm(window, name, point) <= 2.5, name
        assert _markers(overlay) == (0, 1), name
    # 30 mm off (clamped to the image's edge: still more than twice the reach): gone
    for axis, view in ((2, "axial"), (1, "coronal"), (0, "sagittal")):
        window.model.set_cursor_world(point + 30.0 * np.eye(3)[axis])
        assert _off_slice_mm(window, view, point) > 2 * NEAR_MM
        assert _markers(tool.overlays[view]) == (0, 0), view
    # scrolling back onto the slice draws it solid again
    window.model.set_cursor_world(point)
    assert _markers(tool.overlays["axial"]) == (1, 0)

    # the lasso, drawn on one image slice: solid (where it crosses the axial slice, if oblique) on
    # its slice; dashed and faded 2 mm away; gone 30 mm away
    axial = tool.overlays["axial"]

    def drawn():
        return not axial.shapes[True].path().isEmpty(), any(
            not item.path().isEmpty() for item in axial.near_shapes.values())

    window.model.set_cursor_world(ring[0])
    assert drawn()[0]
    window.model.set_cursor_world(np.asarray(ring[0]) + [0.0, 0.0, 2.0])
    assert drawn()[1] and (oblique or not drawn()[0])
    window.model.set_cursor_world(np.asarray(ring[0]) + [0.0, 0.0, 30.0])
    assert drawn() == (False, False)
