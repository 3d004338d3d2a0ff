"""app.actions.store_cases without Qt: listing and opening the store's cases (on a store written
by the previous release too)."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.actions.store_cases import list_cases, open_case
from core.errors import DelineateError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def root(tmp_path):
    shutil.copytree(FIXTURES / "store-v2", tmp_path / "store")
    return tmp_path / "store"


def test_list_and_open_cases(root):
    cases = list_cases(root)
    assert len(cases) == 2 and cases[0].updated >= cases[1].updated
    (approved,) = list_cases(root, state="approved")
    assert approved.state == "approved" and approved.id in {c.id for c in cases}
    steps = []
    image, ai, corrected = open_case(approved.id, root, progress=lambda f, m="": steps.append(f))
    assert steps[0] == 0.0 and steps[-1] == 1.0
    assert image.metadata["store_case"] == approved.id and image.array.shape == (4, 8, 8)
    assert corrected.geometry.same_grid(image.geometry) and ai.geometry.same_grid(image.geometry)
    assert np.count_nonzero(corrected.array == 2) == 4 and np.count_nonzero(ai.array == 2) == 0


def test_errors_are_clear_and_listing_creates_no_store(tmp_path, root):
    assert list_cases(tmp_path / "nothing-here") == [] and not (tmp_path / "nothing-here").exists()
    with pytest.raises(DelineateError, match="unknown review state 'done'"):
        list_cases(root, state="done")
    with pytest.raises(DelineateError, match="no case 0000 in the store"):
        open_case("0000", root)


def test_a_reopened_case_keeps_its_ai_mask_as_the_ai_draft(root):
    """Re-saving a case opened from the store stores the model's mask as "AI" again (and the
    agreement against it), not the previous correction."""
    from app.actions import editing
    from app.actions.review import correction_request, save_correction
    from app.session import CaseSession

    (approved,) = list_cases(root, state="approved")
    image, ai, corrected = open_case(approved.id, root)
    session = CaseSession()
    session.open_store_case(image, ai, corrected, approved.id)
    assert session.store_case == approved.id and session.labelmap is not None
    editing.delete_segment(session, 2)  # the reviewer takes back what was added last time
    assert not (session.labelmap.array == 2).any()
    np.testing.assert_array_equal(session.ai_draft().array, ai.array)
    req = correction_request(session, "in_review", reviewer="dr.b")
    np.testing.assert_array_equal(req.ai.array, ai.array)
    np.testing.assert_array_equal(req.corrected.array, session.labelmap.array)
    case_id, _n = save_correction(req, root)
    _image, ai_again, corrected_again = open_case(case_id, root)
    np.testing.assert_array_equal(ai_again.array, ai.array)
    assert not (corrected_again.array == 2).any()
    # another segmentation loaded over the case: the stored AI mask no longer stands for it
    session.set_labelmap(corrected_again)
    assert session.stored_ai is None


def test_a_reopened_case_gets_its_measurements_back_and_the_next_save_keeps_them(root):
    """The tryout lost measurements: saved with a case, they were not there when it was reopened
    from the worklist, and the next save stored none."""
    from app.actions import editing, measuring
    from app.actions.review import correction_request, save_correction
    from app.session import CaseSession, MeasurementsChanged
    from core.measurements import Measurement

    (approved,) = list_cases(root, state="approved")
    session = CaseSession()
    session.open_store_case(*open_case(approved.id, root), approved.id)
    assert session.measurements == []  # the fixture's store has none: nothing comes back
    ruler = Measurement("ruler", ((0.0, 0.0, 0.0), (3.0, 4.0, 0.0)), "lesion 1")
    measuring.add(session, ruler)
    case_id, _n = save_correction(correction_request(session, "in_review", reviewer="dr.a"), root)
    seen = []
    again = CaseSession()
    again.events.subscribe(MeasurementsChanged, lambda e: seen.append(e.measurements))
    image, ai, corrected = open_case(case_id, root)
    assert image.metadata["store_measurements"][0]["length_mm"] == 5.0
    again.open_store_case(image, ai, corrected, case_id)
    assert again.measurements == [ruler] and seen == [(ruler,)]
    assert not again.has_unsaved_edits()  # as saved: nothing to ask about on closing
    editing.delete_segment(again, 2)
    save_correction(correction_request(again, "approved", reviewer="dr.a"), root)
    image, _ai, _corrected = open_case(case_id, root)
    assert [m["label"] for m in image.metadata["store_measurements"]] == ["lesion 1"]
