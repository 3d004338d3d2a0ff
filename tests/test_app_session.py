"""The case session and the editing actions, without Qt: what the GUI's panels do, driven directly."""
import numpy as np
import pytest

from app.actions import editing
from app.session import (CaseSession, HistoryChanged, ImageOpened, LabelsEdited, LabelsReplaced, LocksChanged,
                         SurfacesChanged)
from core.errors import DelineateError, GeometryError
from core.labels import Label, LabelMap, LabelTable
from core.volume import Volume


def _image(shape=(6, 20, 24), modality="MR") -> Volume:
    z, y, x = np.mgrid[0:shape[0], 0:shape[1], 0:shape[2]]
    return Volume.from_array((x * 3 + y * 5 + z).astype(np.float32), spacing=(1.0, 1.0, 2.0), modality=modality)


def _session(with_labels=True):
    s = CaseSession()
    s.set_image(_image(), "/data/case.nii.gz")
    if with_labels:
        arr = np.zeros(s.volume.geometry.shape_zyx, np.uint8)
        arr[1:5, 4:12, 4:12] = 1
        arr[1:5, 8:16, 14:20] = 2
        s.set_labelmap(LabelMap(arr, s.volume.geometry, LabelTable((Label(1, "liver", (200, 0, 0)),
                                                                     Label(2, "kidney", (0, 200, 0))))))
    return s


def test_events_are_typed_and_can_be_unsubscribed():
    s = CaseSession()
    seen = []
    sub = s.subscribe(ImageOpened, seen.append)
    s.set_image(_image(), "a.nii")
    assert len(seen) == 1 and seen[0].source == "a.nii" and not seen[0].preview
    sub.cancel()
    s.set_image(_image(), "b.nii")
    assert len(seen) == 1
    viewer_seen = []
    unsubscribe = s.viewer.subscribe("image", lambda: viewer_seen.append(1))
    s.set_image(_image(), "c.nii")
    unsubscribe()
    s.set_image(_image(), "d.nii")
    assert viewer_seen == [1]


def test_a_new_image_forgets_the_old_case():
    s = _session()
    s.set_locked(1, True)
    s.set_surface_visible(2, False)
    s.set_uncertainty(0.3)
    s.set_image(_image((4, 10, 10)), "other.nii")
    assert (s.labelmap, s.history, s.run, s.uncertainty) == (None, None, None, None)
    assert s.locked == set() and s.hidden_surfaces == set() and s.source == "other.nii"


def test_preview_then_full_image_keeps_the_source_and_a_failure_drops_the_preview():
    from app.actions.opening import preview_volume

    s = CaseSession()
    full = _image()
    s.set_image(preview_volume(3, full.array[3], full.geometry), preview=True)
    assert s.previewing and s.volume.geometry.size[2] == 1
    np.testing.assert_allclose(s.volume.geometry.origin, full.geometry.index_to_world([0, 0, 3]))
    s.clear_preview()
    assert s.volume is None and not s.previewing
    s.set_image(preview_volume(3, full.array[3], full.geometry), preview=True)
    s.set_image(full, "/x/ct")
    assert not s.previewing and s.volume is full and s.source == "/x/ct"


def test_a_label_map_on_another_grid_is_refused_and_nothing_changes():
    s = _session()
    before = s.labelmap
    other = LabelMap.empty_like(_image((3, 5, 5)).geometry, LabelTable())
    with pytest.raises(GeometryError):
        s.set_labelmap(other)
    assert s.labelmap is before and s.history.lm is before
    with pytest.raises(DelineateError, match="open an image"):
        CaseSession().set_labelmap(before)


def test_a_brush_drag_is_one_undo_step_and_leaves_locked_segments_alone():
    s = _session()
    edited, history = [], []
    s.subscribe(LabelsEdited, edited.append)
    s.subscribe(HistoryChanged, history.append)
    s.set_locked(2, True)
    before = s.labelmap.array.copy()
    stroke = editing.BrushStroke(s, 1, radius_mm=1.5, plane_axis=2)
    for x in range(4, 21, 4):  # dabs 4 mm apart with a 1.5 mm brush: the stroke fills the gaps
        stroke.dab([x, 14, 2])
    stroke.finish()
    lm = s.labelmap.array
    assert len(s.history.done) == 1 and history[-1] == HistoryChanged(True, False)
    assert (lm[2, 14, 4:21] != 0).all()  # no gaps along the path
    assert np.array_equal(lm == 2, before == 2)  # the locked kidney kept every voxel
    assert (lm[1] == before[1]).all() and (lm[3] == before[3]).all()  # on the slice only
    assert edited[-1].values == (1,)
    s.undo()
    np.testing.assert_array_equal(s.labelmap.array, before)
    assert history[-1] == HistoryChanged(False, True)
    s.redo()
    assert (s.labelmap.array[2, 14, 4:21] != 0).all()


def test_erase_within_an_intensity_range():
    s = _session()
    low, high = 20.0, 40.0
    stroke = editing.BrushStroke(s, 1, radius_mm=10, erase=True, intensity_range=(low, high))
    stroke.dab([8, 8, 2])
    stroke.finish()
    img, lm = s.volume.array, s.labelmap.array
    inside = (img >= low) & (img <= high)
    region = np.zeros_like(lm, bool)
    region[1:5, 4:12, 4:12] = True
    assert not (lm[region & inside] == 1).any()  # erased where the intensity is in range...
    assert (lm[region & ~inside & (np.abs(np.mgrid[0:6, 0:20, 0:24][0] - 2) == 0)] == 1).all()  # ...kept elsewhere


def test_segments_are_added_deleted_and_undo_brings_one_back():
    s = _session(with_labels=False)
    replaced = []
    s.subscribe(LabelsReplaced, replaced.append)
    assert editing.new_segment(s) == 1 and replaced and s.labelmap.table.get(1).name == "Segment 1"
    assert editing.new_segment(s) == 2 and len(replaced) == 1  # the same map, a longer table
    stroke = editing.BrushStroke(s, 2, radius_mm=2.0)
    stroke.dab([10, 10, 2])
    stroke.finish()
    editing.delete_segment(s, 2)
    assert not (s.labelmap.array == 2).any() and s.labelmap.table.get(2) is None
    s.undo()
    assert (s.labelmap.array == 2).any() and s.labelmap.table.get(2) is not None


def test_an_operation_runs_on_a_copy_and_applies_as_one_step():
    s = _session()
    lm = s.labelmap
    before = lm.array.copy()
    edit = editing.operation(lm.copy(), "Shrink by mm", 1, 1.0, s.locked)
    np.testing.assert_array_equal(lm.array, before)  # the map on screen is untouched meanwhile
    s.apply(edit, write=True)
    assert (lm.array == 1).sum() < (before == 1).sum() and np.array_equal(lm.array == 2, before == 2)
    s.undo()
    np.testing.assert_array_equal(lm.array, before)
    assert set(editing.OPERATIONS) >= {"Fill holes", "Keep largest", "Grow by mm", "Interpolate slices"}


def test_ai_draft_is_the_map_before_this_sessions_edits():
    s = _session()
    loaded = s.labelmap.array.copy()
    assert s.ai_draft() is s.labelmap  # nothing edited: the map itself
    stroke = editing.BrushStroke(s, 2, radius_mm=2.0)
    stroke.dab([5, 5, 2])
    stroke.finish()
    assert not np.array_equal(s.labelmap.array, loaded)
    np.testing.assert_array_equal(s.ai_draft().array, loaded)


def test_locks_and_surfaces_announce_only_real_changes():
    s = _session()
    locks, surfaces = [], []
    s.subscribe(LocksChanged, locks.append)
    s.subscribe(SurfacesChanged, surfaces.append)
    s.set_locked(1, True)
    s.set_locked(1, True)
    s.set_surface_visible(2, False)
    s.set_surface_visible(2, False)
    s.set_surface_visible(2, True)
    assert [e.locked for e in locks] == [frozenset({1})]
    assert [e.hidden for e in surfaces] == [frozenset({2}), frozenset()]
