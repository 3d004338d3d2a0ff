"""What counts as unsaved work on the open case (app.session.CaseSession.has_unsaved_edits: the
question before another case replaces it), and Delete segment's undo giving the segment back exactly
as it was listed (name, colour, codes), not as a default "Label n"."""
import numpy as np

from app.actions import editing as edit_actions
from app.actions import measuring
from app.session import CaseSession
from core.editing import brush
from core.labels import Code, Label, LabelMap, LabelTable
from core.measurements import Measurement
from core.volume import Volume

LIVER = Label(1, "Liver", (200, 100, 60), Code("SCT", "123037004", "Anatomical Structure"),
              Code("SCT", "10200004", "Liver"))
SPLEEN = Label(2, "Spleen", (90, 30, 200))


def _session(painted: bool = True) -> CaseSession:
    s = CaseSession()
    vol = Volume.from_array(np.zeros((6, 20, 24), np.int16), spacing=(0.8, 0.6, 2.5), modality="CT")
    s.set_image(vol, "phantom.nii.gz")
    lm = LabelMap(np.zeros(vol.geometry.shape_zyx, np.uint8), vol.geometry, LabelTable((LIVER, SPLEEN)))
    if painted:
        lm.array[2:4, 5:12, 6:14] = 1
    s.set_labelmap(lm)
    return s


def test_an_untouched_draft_is_no_unsaved_work_an_edit_is_until_saved():
    s = _session()
    assert not s.has_unsaved_edits()  # a model's draft (or a loaded file) nobody touched yet
    s.apply(brush(s.labelmap, (3, 3, 1), 1.5, 2))
    assert s.has_unsaved_edits()
    s.undo()
    assert not s.has_unsaved_edits()  # back to the draft
    s.redo()
    assert s.has_unsaved_edits()
    s.mark_saved("case-1", 1, "in_review")
    assert not s.has_unsaved_edits() and s.mask_saved()
    s.undo()
    assert s.has_unsaved_edits()  # the store has the edit: undoing it is a change
    s.redo()
    measuring.add(s, Measurement("ruler", ((0.0, 0.0, 0.0), (5.0, 0.0, 0.0))))
    assert s.has_unsaved_edits()  # measurements are saved with the correction


def test_a_save_records_the_mask_as_asked_for_and_a_new_draft_starts_clean():
    s = _session()
    s.apply(brush(s.labelmap, (3, 3, 1), 1.5, 2))
    mark = s.edit_mark()  # the save was asked for here; the next edit lands while it is written
    s.apply(brush(s.labelmap, (15, 15, 4), 1.5, 2))
    s.mark_saved("case-1", 1, "in_review", mark)
    assert s.has_unsaved_edits()
    s.set_labelmap(s.labelmap.copy())  # another draft put up (a model run): nothing edited on it yet
    assert not s.has_unsaved_edits() and not s.mask_saved()
    s.set_labelmap(s.labelmap.copy(), unsaved=True)  # edits restored after a crash are not in the store
    assert s.has_unsaved_edits()
    s.set_image(s.volume, "other.nii.gz")
    assert not s.has_unsaved_edits()  # no mask: nothing to lose


def test_undoing_delete_segment_lists_it_again_exactly_and_redo_drops_it():
    s = _session()
    before = s.labelmap.array.copy()
    edit = edit_actions.delete_segment(s, 1)
    assert s.labelmap.table.get(1) is None and not (s.labelmap.array == 1).any()
    assert s.has_unsaved_edits()
    s.undo()
    assert s.labelmap.table.labels == (LIVER, SPLEEN)  # name, colour and both codes, in order
    np.testing.assert_array_equal(s.labelmap.array, before)
    s.redo()
    assert s.labelmap.table.labels == (SPLEEN,) and not (s.labelmap.array == 1).any()
    s.undo()
    assert s.labelmap.table.get(1) == LIVER
    assert "Liver −" in edit_actions.report("Delete segment", edit, s.labelmap, 1)


def test_an_empty_segment_deleted_comes_back_on_undo():
    s = _session(painted=False)
    edit = edit_actions.delete_segment(s, 2)
    assert s.labelmap.table.labels == (LIVER,) and len(s.history.done) == 1
    assert edit_actions.report("Delete segment", edit, s.labelmap, 2) == "Delete segment: Spleen (no voxels)"
    s.undo()
    assert s.labelmap.table.labels == (LIVER, SPLEEN)
