"""correction_request snapshots the case without LabelMap.copy()'s rescan and the store completes
the tables from its own pass over the maps: what is stored must be what the copies stored
(arrays, tables, metrics), and editing after the request must not reach the snapshot."""
import numpy as np

from app.actions import editing as edit_actions
from app.actions import review
from app.session import CaseSession
from core import editing
from core.labels import LabelMap, LabelTable
from core.volume import Volume
from store.corrections import CorrectionsStore


def _case():
    rng = np.random.default_rng(3)
    vol = Volume.from_array(rng.integers(-100, 200, (12, 20, 24)).astype(np.int16), spacing=(0.8, 0.9, 2.0),
                            modality="CT")
    lab = np.zeros((12, 20, 24), np.uint8)
    lab[2:9, 3:12, 4:14] = 1
    lab[4:10, 12:18, 14:22] = 2
    s = CaseSession()
    s.set_image(vol)
    s.set_labelmap(LabelMap(lab, vol.geometry, LabelTable.from_names(["liver", "spleen"])))
    return s


def _paint(s, value, box):
    shape = tuple(b.stop - b.start for b in box)
    s.apply(editing.apply(s.labelmap, "paint" if value else "erase", value, np.ones(shape, bool), offset=box))


def _stored(root, case_id):
    with CorrectionsStore(root) as st:
        _image, ai, fixed = st.load(case_id)
        return ai, fixed, st.latest(case_id)["metrics"]


def test_snapshot_stores_what_the_copies_stored(tmp_path):
    s = _case()
    _paint(s, 3, (slice(1, 4), slice(14, 19), slice(2, 8)))  # a segment the AI never drew: "Label 3"
    _paint(s, 0, (slice(5, 8), slice(13, 16), slice(15, 20)))  # part of the spleen erased
    edit_actions.delete_segment(s, 1)  # liver gone from map and table; the AI draft still has it
    old_ai, old_fixed = s.ai_draft(), s.labelmap.copy()  # the copies the request used to make

    req = review.correction_request(s, "approved", "dr.test")
    assert not np.shares_memory(req.corrected.array, s.labelmap.array)
    assert not np.shares_memory(req.ai.array, s.labelmap.array)
    np.testing.assert_array_equal(req.ai.array, old_ai.array)
    np.testing.assert_array_equal(req.corrected.array, old_fixed.array)
    _paint(s, 2, (slice(0, 12), slice(0, 20), slice(0, 24)))  # editing goes on while it saves
    assert np.count_nonzero(req.corrected.array == 2) < req.corrected.array.size

    new_id, _ = review.save_correction(req, tmp_path / "new")
    with CorrectionsStore(tmp_path / "old") as st:
        old_id, _ = st.save(s.volume, old_ai, old_fixed, reviewer="dr.test", state="approved")
    new, old = _stored(tmp_path / "new", new_id), _stored(tmp_path / "old", old_id)
    for n, o in zip(new[:2], old[:2]):
        np.testing.assert_array_equal(n.array, o.array)
        assert n.table.to_dict() == o.table.to_dict()
    assert new[0].table.get(1).name == "Label 1"  # as LabelMap's own completion names it
    assert new[2] == old[2] and set(new[2]) == {"1", "2", "3"}
    assert new[2]["1"]["corrected_ml"] == 0 and new[2]["3"]["ai_ml"] == 0


def test_unedited_case_saves_one_snapshot_for_both(tmp_path):
    s = _case()
    req = review.correction_request(s, "in_review", "dr.test")
    assert req.ai is req.corrected and not np.shares_memory(req.ai.array, s.labelmap.array)
    case_id, n = review.save_correction(req, tmp_path / "store")
    ai, fixed, metrics = _stored(tmp_path / "store", case_id)
    np.testing.assert_array_equal(ai.array, s.labelmap.array)
    np.testing.assert_array_equal(fixed.array, s.labelmap.array)
    assert all(m["dice"] == 1.0 and m["hd95_mm"] == 0.0 for m in metrics.values())
