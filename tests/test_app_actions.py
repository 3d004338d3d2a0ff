"""The GUI's case commands as app.actions, without Qt: segment, compare, explain, save, retrain, export."""
import numpy as np
import pytest

from app.actions import editing, explaining, review, segmenting
from app.session import CaseSession, ModelRan, ReviewSaved
from core.errors import DelineateError
from core.volume import Volume
from store.corrections import CorrectionsStore

pytestmark = pytest.mark.precision  # tiny random networks: run on the fp32 path too


@pytest.fixture
def case(tmp_path, fp32):
    from tests.test_inference import make_card

    rng = np.random.default_rng(5)
    vol = Volume.from_array(rng.normal(100, 20, (12, 28, 30)).astype(np.float32), spacing=(2.0, 2.0, 3.0),
                            modality="MR")
    s = CaseSession()
    s.set_image(vol, str(tmp_path / "mr.nii.gz"))
    card = make_card(tmp_path / "models" / "tiny-unet" / "1.0.0", "UNet", spacing=(4.0, 4.0, 4.0))
    return s, card


def test_segment_puts_the_run_and_its_map_in_the_session(case):
    s, card = case
    ran = []
    s.subscribe(ModelRan, ran.append)
    run = segmenting.segment(s.volume, card, "cpu")
    s.set_run(run)
    assert ran and s.run is run and s.labelmap is run.labels and s.labelmap.geometry is s.volume.geometry
    assert run.probabilities.shape == (card.n_classes,) + s.volume.array.shape
    assert s.history is not None and not s.history.done
    # a run that finishes after another image was opened is dropped
    late = segmenting.segment(s.volume, card, "cpu")
    s.set_image(Volume.from_array(np.zeros((4, 8, 8), np.float32)), "other")
    s.set_run(late)
    assert s.run is None and s.labelmap is None


def test_compare_leaves_the_mask_and_maps_the_disagreement(case, tmp_path):
    from tests.test_inference import make_card

    s, card = case
    s.set_run(segmenting.segment(s.volume, card, "cpu"))
    shown = s.labelmap.array.copy()
    other = make_card(tmp_path / "models" / "tiny-fcn" / "1.0.0", "FCN", spacing=(4.0, 4.0, 4.0))
    result = segmenting.compare(s.volume, s.labelmap.copy(), other, "tiny-unet", "cpu")
    np.testing.assert_array_equal(s.labelmap.array, shown)
    expected = (shown != result.run.labels.array) & ((shown > 0) | (result.run.labels.array > 0))
    assert np.array_equal(result.differ > 0, expected)
    assert result.heatmap.name == "Disagreement: tiny-unet vs tiny-fcn"
    assert result.heatmap.geometry.same_grid(s.volume.geometry) and 0 <= result.fraction <= 1
    assert {r.name for r in result.rows} <= {"a", "b"}


def test_explain_needs_a_model_and_returns_layers_on_the_grid(case):
    s, card = case
    with pytest.raises(DelineateError, match="run a model first"):
        explaining.explain(s.volume, None, "gradcam", 1)
    s.set_run(segmenting.segment(s.volume, card, "cpu"))
    with pytest.raises(DelineateError, match="unknown explanation method"):
        explaining.explain(s.volume, s.run, "lime", 1)
    roi = np.zeros(s.volume.array.shape, bool)
    roi[4:8, 10:18, 10:20] = True
    done = explaining.explain(s.volume, s.run, "gradcam", 1, roi, {1: "a"}.get)
    assert done.heatmap.name == "Grad-CAM (a)" and done.heatmap.geometry.same_grid(s.volume.geometry)
    assert done.explanation.values.shape == s.volume.array.shape and "window" in done.summary
    unc = explaining.explain(s.volume, s.run, "uncertainty", label_name={1: "a", 2: "b"}.get)
    assert unc.heatmap.name == "Uncertainty" and "Case uncertainty" in unc.summary
    assert 0 <= unc.explanation.extra["case"] <= 1
    assert all(r["volume_ml"] > 0 for r in unc.regions)
    s.set_uncertainty(unc.explanation.extra["case"])
    assert s.uncertainty == unc.explanation.extra["case"]


def test_region_is_the_piece_under_the_crosshair():
    from core.labels import LabelMap, LabelTable

    arr = np.zeros((3, 10, 20), np.uint8)
    arr[1, 2:5, 2:5] = 1
    arr[1, 2:5, 12:15] = 1
    lm = LabelMap(arr, Volume.from_array(arr.astype(np.float32)).geometry, LabelTable.from_names(["x"]))
    piece = explaining.region(lm, 1, (3, 3, 1))
    assert piece.sum() == 9 and piece[1, 3, 3]
    assert explaining.region(lm, 1, (3, 3, 1), whole=True).sum() == 18
    assert explaining.region(lm, 1, (8, 8, 1)).sum() == 18  # not on the label: all of it


def test_save_a_correction_with_provenance(case, tmp_path):
    s, card = case
    s.set_run(segmenting.segment(s.volume, card, "cpu"))
    ai = s.labelmap.array.copy()
    stroke = editing.BrushStroke(s, 2, radius_mm=4.0)
    stroke.dab([15, 14, 6])
    stroke.finish()
    with pytest.raises(DelineateError, match="reason"):
        review.correction_request(s, "rejected", "dr.a")
    req = review.correction_request(s, "approved", "dr.a")
    stroke = editing.BrushStroke(s, 1, radius_mm=4.0)  # editing goes on while the snapshot is saved
    stroke.dab([5, 5, 2])
    stroke.finish()
    saved = []
    s.subscribe(ReviewSaved, saved.append)
    case_id, n = review.save_correction(req, tmp_path / "store")
    s.mark_saved(case_id, n, "approved")
    assert saved[0].case_id == case_id and s.store_case == case_id and s.review_state == "approved"
    with CorrectionsStore(tmp_path / "store") as st:
        (c,) = st.cases("approved")
        info = st.latest(c.id)
        _img, ai2, fixed2 = st.load(c.id)
    assert info["reviewer"] == "dr.a" and info["model_id"] == "tiny-unet" and info["card"]["id"] == "tiny-unet"
    np.testing.assert_array_equal(ai2.array, ai)  # the model's draft, not the edited map
    np.testing.assert_array_equal(fixed2.array, req.corrected.array)
    assert not np.array_equal(fixed2.array, s.labelmap.array)  # the later stroke is not in this save


def test_retrain_starts_from_the_drafts_model_and_reads_the_store(case, tmp_path, monkeypatch):
    from inference.training import from_store

    s, card = case
    with pytest.raises(DelineateError, match="retraining starts from a model"):
        review.retrain_base(CaseSession())  # nothing open: no model to start from
    s.set_run(segmenting.segment(s.volume, card, "cpu"))
    assert review.retrain_base(s) is s.run.card
    seen = {}

    def fine_tune(store, base, out_root, iterations, progress, cancel, log, versions):
        seen.update(cases=len(store.cases()), base=base.id, out=out_root, iterations=iterations, versions=versions)
        return base

    monkeypatch.setattr(from_store, "retrain", fine_tune)
    with CorrectionsStore(tmp_path / "store") as st:
        st.save(s.volume, s.labelmap, s.labelmap.copy(), state="approved")
    from inference.registry import Registry

    review.retrain(card, tmp_path / "store", tmp_path / "out", 7, registry=Registry([tmp_path / "models"]))
    assert seen == {"cases": 1, "base": "tiny-unet", "out": tmp_path / "out", "iterations": 7, "versions": ["1.0.0"]}


def test_export_the_case_on_screen(case, tmp_path):
    from app.actions.exporting import case_from_session, export_case
    from formats.io import read_labelmap

    s, card = case
    s.set_run(segmenting.segment(s.volume, card, "cpu"))
    stroke = editing.BrushStroke(s, 1, radius_mm=5.0)
    stroke.dab([15, 14, 6])
    stroke.finish()
    snap = case_from_session(s, "dr.b")
    written = export_case("nifti", snap, tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(read_labelmap(written[0], s.volume).array, s.labelmap.array)
    stats = export_case("stats", snap, tmp_path / "stats.csv")[0].read_text().splitlines()
    assert len(stats) >= 2 and "dice" in stats[0].lower()  # the draft is known: agreement is reported
    with pytest.raises(DelineateError, match="nothing to export"):
        case_from_session(CaseSession())


def test_a_fractional_seg_holds_the_runs_probabilities(case, tmp_path, monkeypatch):
    """From the session, a fractional SEG takes the probabilities the run kept: the model does not run again."""
    import pydicom

    from app.actions.exporting import case_from_session, export_case
    from formats.dicom.write import write_series
    from formats.io import read_image
    from inference import runner

    s, card = case
    write_series(s.volume, tmp_path / "dicom", series_description="MR")
    dicom = read_image(tmp_path / "dicom")
    s.set_image(dicom, str(tmp_path / "dicom"))
    s.set_run(segmenting.segment(dicom, card, "cpu"))
    monkeypatch.setattr(runner, "segment", lambda *a, **k: pytest.fail("the model ran again"))
    (seg_path, *_rest) = export_case("seg", case_from_session(s), tmp_path / "frac.dcm", fractional=True)
    ds = pydicom.dcmread(seg_path)
    assert ds.SegmentationType == "FRACTIONAL" and len(ds.SegmentSequence) == card.n_classes - 1


def test_explain_a_model_on_the_whole_image_names_labels_by_name_or_value(case):
    s, card = case
    assert explaining.label_value(card, "b") == 2 and explaining.label_value(card, "2") == 2
    assert explaining.label_value(card) == 1
    with pytest.raises(DelineateError, match="no label 'liver'; labels: a, b"):
        explaining.label_value(card, "liver")
    result = explaining.explain_model(s.volume, card, "uncertainty", device="cpu")
    assert result.values.shape == s.volume.array.shape and 0 <= result.extra["case"] <= 1


def test_check_store_refuses_a_folder_that_is_not_a_store(tmp_path, case):
    from app.actions.store_cases import check_store

    with pytest.raises(DelineateError, match="not a Delineate store"):
        check_store(tmp_path)
    assert not (tmp_path / "index.sqlite").exists()  # refused, not created
    s, _card = case
    from core.labels import LabelMap, LabelTable

    lm = LabelMap.empty_like(s.volume.geometry, LabelTable.from_names(["x"]))
    with CorrectionsStore(tmp_path / "store") as st:
        st.save(s.volume, lm, lm.copy(), state="approved")
    (tmp_path / "store" / "cases" / "stray.tmp").write_text("litter")
    root, removed, problems, n = check_store(tmp_path / "store", repair=True)
    assert n == 1 and problems == [] and any("stray.tmp" in str(p) for p in removed)


def test_evaluate_on_a_sites_own_cases_matches_labels_by_name(case, tmp_path):
    from app.actions.evaluating import evaluate, pairs
    from core.labels import Label, LabelMap, LabelTable
    from formats.io import write_image, write_labelmap

    s, card = case
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    write_image(s.volume, tmp_path / "img" / "case1.nii.gz")
    pred = segmenting.segment(s.volume, card, "cpu").labels.array
    swapped = np.select([pred == 1, pred == 2], [2, 1], 0).astype(np.uint8)  # the site numbers them the other way
    truth = LabelMap(swapped, s.volume.geometry, LabelTable((Label(1, "b", (0, 0, 255)), Label(2, "a", (255, 0, 0)))))
    write_labelmap(truth, tmp_path / "lab" / "case1.seg.nrrd")
    (tmp_path / "img" / "unlabelled.nii.gz").write_bytes(b"")  # no label map: not a case
    assert pairs(str(tmp_path / "img"), str(tmp_path / "lab")) == [(tmp_path / "img" / "case1.nii.gz",
                                                                      tmp_path / "lab" / "case1.seg.nrrd")]
    result = evaluate(card, str(tmp_path / "img"), str(tmp_path / "lab"), "cpu")
    assert result.matched_by == "name" and {r.name for _c, r in result.rows} == {"a", "b"}
    for _case, r in result.rows:  # the site's labels are the model's own output: perfect agreement
        assert r.dice == 1.0 or (not (pred == r.value).any() and np.isnan(r.dice)), r
    (tmp_path / "none").mkdir()
    with pytest.raises(DelineateError, match="no image in"):
        pairs(str(tmp_path / "img"), str(tmp_path / "none"))
    with pytest.raises(DelineateError, match="two files, or two folders"):
        pairs(str(tmp_path / "img"), str(tmp_path / "lab" / "case1.seg.nrrd"))


def test_the_stored_uncertainty_is_the_runs_own_whether_or_not_a_map_was_made(case, tmp_path):
    """The worklist ranks cases by one measure: the run's one-pass uncertainty, stored with every
    correction of a model run (it was blank until someone made an uncertainty map, and then on the
    map's own scale)."""
    from inference.envelope import run_uncertainty

    s, card = case
    s.set_run(segmenting.segment(s.volume, card, "cpu"))
    expect = round(run_uncertainty(s.run.sample), 5)
    assert review.correction_request(s, "in_review").uncertainty == expect is not None
    s.set_uncertainty(0.9)  # an uncertainty map's case value (TTA) does not replace it
    req = review.correction_request(s, "in_review")
    assert req.uncertainty == expect
    case_id, _n = review.save_correction(req, tmp_path / "store")
    with CorrectionsStore(tmp_path / "store") as store:
        assert store.case(case_id).uncertainty == pytest.approx(expect)
