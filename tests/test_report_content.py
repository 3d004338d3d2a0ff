"""What the review report says right after an approval, through the GUI's own path
(app.actions.review -> store, app.actions.exporting -> export.report): the state, case id and
reviewer; key images through the reviewer's edits and the most uncertain region; a segment the
AI never drew is "added by reviewer", not "Dice 0.000". Small volumes, no display."""
import numpy as np
import pytest
from matplotlib.text import Text

from app.actions import review
from app.actions.exporting import case_from_session, case_from_store, report_regions
from app.session import CaseSession
from core import editing
from core.labels import LabelMap, LabelTable
from core.overlay import HeatMap
from core.statistics import segment_statistics
from core.volume import Volume
from export.report import ReportInfo, report_figures, report_key_images

SHAPE = (24, 40, 48)  # z, y, x
EDIT = (slice(15, 19), slice(26, 31), slice(30, 36))  # the reviewer paints a lesion here


def _session() -> CaseSession:
    """A CT with one organ from the 'AI' and a lesion the reviewer painted far from its centre."""
    rng = np.random.default_rng(0)
    vol = Volume.from_array(rng.normal(40, 10, SHAPE).astype(np.int16), spacing=(0.8, 0.8, 2.0), modality="CT")
    lab = np.zeros(SHAPE, np.uint8)
    lab[4:12, 5:20, 5:20] = 1
    s = CaseSession()
    s.set_image(vol)
    s.set_labelmap(LabelMap(lab, vol.geometry, LabelTable.from_names(["liver", "lesion"])))
    where = np.ones(tuple(b.stop - b.start for b in EDIT), bool)
    s.apply(editing.apply(s.labelmap, "paint", 2, where, offset=EDIT))
    return s


def _texts(figs) -> str:
    return "\n".join(t.get_text() for fig in figs for t in fig.findobj(Text))


def _cell_texts(figs) -> list[str]:
    from matplotlib.table import Table

    return [c.get_text().get_text() for fig in figs for t in fig.findobj(Table) for c in t.get_celld().values()]


def _report(case):
    from app.actions.exporting import _model
    _card, model = _model(case, need_card=False)
    stats = segment_statistics(case.volume, case.labelmap, case.ai)
    info = ReportInfo(reviewer=case.reviewer, state=case.state, case_id=case.case_id, model=model,
                      regions=report_regions(case))
    return info, stats, report_figures(info, case.volume, case.labelmap, stats)


def test_right_after_approval_the_report_names_state_case_and_reviewer(tmp_path):
    s = _session()
    req = review.correction_request(s, "approved", "dr.house")
    case_id, n = review.save_correction(req, tmp_path / "store")
    s.mark_saved(case_id, n, "approved")
    text = _texts(_report(case_from_session(s, "dr.house"))[2])
    assert "state: approved" in text and f"case: {case_id}" in text and "reviewer: dr.house" in text
    # the same case read back from the store says the same
    text = _texts(_report(case_from_store(case_id[:8], tmp_path / "store"))[2])
    assert "state: approved" in text and f"case: {case_id}" in text and "reviewer: dr.house" in text
    # the case reopened from the store (as the worklist does) says what it was saved as
    from store.corrections import CorrectionsStore
    with CorrectionsStore(tmp_path / "store") as st:
        image, _ai, corrected = st.load(case_id)
    reopened = CaseSession()
    reopened.set_image(image, "", store_case=case_id)
    reopened.set_labelmap(corrected)
    text = _texts(_report(case_from_session(reopened))[2])
    assert "state: approved" in text and f"case: {case_id}" in text and "reviewer: dr.house" in text
    # before any save it says so instead of a bare dash
    text = _texts(_report(case_from_session(_session(), "dr.house"))[2])
    assert "state: not saved" in text and "case: not saved to the store" in text


def test_key_images_go_through_the_edited_region_and_the_most_uncertain_one(tmp_path):
    s = _session()
    values = np.zeros(SHAPE, np.float32)
    values[5:8, 30:36, 6:12] = 0.9  # the model's doubt, away from both the organ and the edit
    s.viewer.add_heatmap(HeatMap.from_values("Uncertainty", values, s.volume.geometry, vmin=0.0, vmax=1.0))
    from app.actions import editing as edit_actions

    edit_actions.delete_segment(s, 3)  # an empty segment deleted: an edit of no voxels, boxed at the origin
    case = case_from_session(s, "dr.house")
    assert case.regions["edited"] == [[b.start, b.stop] for b in EDIT]
    info, _stats, _figs = _report(case)
    images = report_key_images(info, case.volume, case.labelmap)
    by_view = {(i.view, i.reason): i.slice_index for i in images}
    # identity direction: axial slices step through z, coronal through y, sagittal through x
    assert EDIT[0].start <= by_view["axial", "edited region"] < EDIT[0].stop
    assert EDIT[1].start <= by_view["coronal", "edited region"] < EDIT[1].stop
    assert EDIT[2].start <= by_view["sagittal", "edited region"] < EDIT[2].stop
    assert 5 <= by_view["axial", "most uncertain region"] < 8
    # the plane through the edit shows the painted lesion's colour (not only the organ's)
    axial = next(i for i in images if i.reason == "edited region" and i.view == "axial")
    colour = np.asarray(case.labelmap.table.get(2).color, float)
    assert np.any(np.abs(axial.rgb.astype(float) - colour).sum(axis=2) < 60)
    # a store case has no session history: the edits are where the draft and the correction differ
    case_id, _n = review.save_correction(review.correction_request(s, "in_review", "dr.house"), tmp_path / "st")
    assert report_regions(case_from_store(case_id, tmp_path / "st"))["edited"] == [[b.start, b.stop] for b in EDIT]


def test_a_segment_the_ai_never_drew_is_added_by_the_reviewer():
    s = _session()
    case = case_from_session(s, "dr.house")
    _info, stats, figs = _report(case)
    liver, lesion = stats
    assert lesion["added_by_reviewer"] and lesion["dice_vs_ai"] is None and lesion["hd95_vs_ai_mm"] is None
    assert liver["added_by_reviewer"] is False and liver["dice_vs_ai"] == pytest.approx(1.0)
    cells = _cell_texts(figs)
    assert "added by reviewer" in cells and "0.000" not in cells and "1.000" in cells


def test_without_an_uncertainty_map_the_report_finds_the_runs_own_most_uncertain_region(tmp_path):
    """The tryout's report warned that the model was unsure of the case but every key image was
    the edited region: the uncertain one came only from an uncertainty map made by hand."""
    from inference.envelope import entropy_map
    from inference.runner import Segmentation
    from tests.test_inference import make_card

    s = _session()
    p = np.zeros((3,) + SHAPE, np.float16)
    p[0] = 1.0  # certain background everywhere...
    p[:, 6:9, 28:34, 8:14] = 1 / 3  # ...but here, where it cannot tell the classes apart
    run = Segmentation(s.labelmap, lambda: 1 / 0, make_card(tmp_path / "card", modality="CT"), "cpu", 0.1)
    run.uncertainty_map = entropy_map(p.astype(np.float32), s.volume.geometry)  # image-grid probabilities never made
    s.run = run
    case = case_from_session(s, "dr.house")
    (z0, z1), (y0, y1), (x0, x1) = case.regions["uncertain"]
    assert z0 <= 7 < z1 and y0 <= 31 < y1 and x0 <= 11 < x1
    info, _stats, _figs = _report(case)
    by_view = {(i.view, i.reason): i.slice_index for i in report_key_images(info, case.volume, case.labelmap)}
    assert 6 <= by_view["axial", "most uncertain region"] < 9


def test_the_runs_uncertain_region_is_placed_through_world_coordinates_from_a_coarser_model_grid(tmp_path):
    """The model's grid is coarser than the image's (the brain model's 2 mm, say) and starts half a
    voxel off: the region found there lands on the same place of the image."""
    from core.geometry import Geometry
    from inference.envelope import entropy_map
    from inference.runner import Segmentation
    from tests.test_inference import make_card

    s = _session()
    g = s.volume.geometry
    coarse = Geometry((SHAPE[2] // 2, SHAPE[1] // 2, SHAPE[0] // 2), np.asarray(g.spacing) * 2,
                      np.asarray(g.origin) + np.asarray(g.spacing) / 2, g.direction)
    p = np.zeros((3, SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2] // 2), np.float32)
    p[0] = 1.0
    p[:, 3:6, 14:17, 4:7] = 1 / 3  # image voxels z 6-11, y 28-33, x 8-13
    run = Segmentation(s.labelmap, lambda: 1 / 0, make_card(tmp_path / "card", modality="CT"), "cpu", 0.1)
    run.uncertainty_map = entropy_map(p, coarse)
    s.run = run
    assert case_from_session(s).regions["uncertain"] == [[6, 12], [28, 34], [8, 14]]


def test_a_runs_uncertainty_map_is_strided_to_its_voxel_budget_on_a_grid_of_its_own():
    from core.geometry import Geometry
    from inference.envelope import entropy_map, normalised_entropy

    p = np.random.default_rng(0).dirichlet((1, 1), (40, 41, 42)).transpose(3, 0, 1, 2).astype(np.float32)
    grid = Geometry((42, 41, 40), (0.5, 0.6, 2.0), (10.0, -5.0, 3.0))
    values, coarse = entropy_map(p, grid, max_voxels=9000)  # 68880 voxels: every 2nd along each axis
    assert values.shape == (20, 21, 21) and coarse.size == (21, 21, 20)
    np.testing.assert_allclose(coarse.spacing, [1.0, 1.2, 4.0])
    np.testing.assert_allclose(coarse.index_to_world([[3, 4, 5]]), grid.index_to_world([[6, 8, 10]]))
    np.testing.assert_allclose(values, normalised_entropy(p[:, ::2, ::2, ::2]))
    assert values.max() <= 1.0 + 1e-6 and normalised_entropy(np.ones((1, 3))).max() == 0  # one class: certain
