"""The out-of-distribution guard: it speaks on images a model was not made for (drawn by code apart
from the training generators, tests/guard_cases.py) and stays quiet on in-range held-out cases; its
words reach the CLI, the stored correction and the report."""
import numpy as np
import pytest

from app.actions import guard
from inference.card import CardError, ModelCard
from inference.envelope import Envelope, envelope_of, run_uncertainty
from inference.registry import SHIPPED, Registry
from tests.guard_cases import ct_body, mr_head, out_of_envelope, photo

pytestmark = pytest.mark.precision


@pytest.fixture(scope="module")
def shipped():
    reg = Registry([SHIPPED])
    return {i: reg.get(i) for i in ("brain-tissue", "ct-torso-phantom", "us-lesion-2d")}


def test_shipped_cards_carry_a_calibrated_envelope(shipped):
    for card in shipped.values():
        env = envelope_of(card)
        assert card.envelope and env.quantiles and env.uncertainty_max is not None, card.id
        assert "held-out" in env.calibrated_on and env.modalities == [card.modality]


def test_warns_on_images_the_model_was_not_made_for(shipped):
    cases = out_of_envelope(np.random.default_rng(7))
    missed = [(what, card_id) for what, vol, card_id in cases if not guard.check_image(vol, shipped[card_id])]
    rate = 1 - len(missed) / len(cases)
    assert rate >= 0.95, f"warned on {rate:.0%} of {len(cases)} out-of-envelope cases; missed {missed}"


def test_quiet_on_in_range_held_out_cases(shipped, fp32):
    """Held-out cases of each model's own generator, with seeds apart from calibration's, through
    both checks (before the run, and the run's uncertainty after)."""
    from inference.runner import segment
    from inference.training.recipes import RECIPES

    warned, total = [], 0
    for recipe, card_id, n in (("us", "us-lesion-2d", 8), ("ct", "ct-torso-phantom", 3), ("brain", "brain-tissue", 2)):
        card = shipped[card_id]
        for vol, _truth in RECIPES[recipe]().heldout(n, 41_000):
            checked = guard.check_run(vol, card, segment(vol, card, device="cpu"))
            total += 1
            if checked.warnings:
                warned.append((card_id, checked.warnings))
    assert len(warned) / total <= 0.05 + 1e-9, f"{len(warned)} of {total} in-range cases warned: {warned}"


def test_the_real_template_is_inside_the_brain_models_envelope(shipped):
    from formats import samples
    from formats.io import read_image

    assert guard.check_image(read_image(samples.path("mni152-t1")), shipped["brain-tissue"]) == []


def test_reasons_say_what_is_wrong(shipped):
    rng = np.random.default_rng(3)
    (why,) = guard.check_image(ct_body(rng), shipped["brain-tissue"])[:1]
    assert "the image is CT; brain-tissue was made for MR" in why
    thick = guard.check_image(mr_head(rng, (1.0, 1.0, 10.0)), shipped["brain-tissue"])
    assert any("10 mm along z" in w and "works at 2 mm" in w for w in thick)
    pic = guard.check_image(photo(rng), shipped["us-lesion-2d"])
    assert any("colour picture" in w for w in pic) and any("the image is OT" in w for w in pic)


def test_a_run_measures_the_input_it_used(shipped):
    """The guard reads the intensities from the runner's own input; they are what computing the
    network's view again would give."""
    from inference.envelope import input_quantiles, run_and_measure
    from inference.training.recipes import RECIPES

    card = shipped["us-lesion-2d"]
    (vol, _truth), = RECIPES["us"]().heldout(1, 41_000)
    run, quantiles = run_and_measure(vol, card, device="cpu")
    assert quantiles == input_quantiles(vol, card) and run.labels.geometry is vol.geometry


def test_uncertainty_is_high_where_the_model_hesitates():
    sure = np.zeros((3, 4, 4, 4), np.float32)
    sure[1] = 1.0
    assert run_uncertainty(sure) < 0.01
    assert run_uncertainty(np.full((3, 4, 4, 4), 1 / 3, np.float32)) == pytest.approx(1.0, abs=1e-3)
    env = Envelope(["MR"], 3, uncertainty_max=0.2)
    from inference.envelope import check_run

    assert check_run(type("C", (), {"id": "m"})(), env, 0.5)[0].startswith("the model is unsure")


def test_a_broken_envelope_is_refused_with_the_card(shipped, tmp_path):
    d = shipped["us-lesion-2d"].to_dict()
    d["envelope"] = {"modalities": "US"}  # no spatial_dims
    with pytest.raises(CardError, match="envelope"):
        ModelCard.from_dict(d, tmp_path / "card.json")


def test_the_warning_reaches_the_cli_the_store_and_the_report(shipped, tmp_path, capsys, fp32):
    from app.actions import review, segmenting
    from app.actions.exporting import case_from_session
    from app.session import CaseSession, GuardChecked
    from formats.io import write_image
    from store.corrections import CorrectionsStore

    import main

    ct = ct_body(np.random.default_rng(11))
    write_image(ct, tmp_path / "ct.nii.gz")
    assert main.main(["segment", str(tmp_path / "ct.nii.gz"), str(tmp_path / "out.nii.gz"), "--model",
                      "brain-tissue", "--device", "cpu"]) == 0  # said, not refused: the user named the model
    # NIfTI has no modality tag (it reads as MR): the intensities give the CT away
    err = capsys.readouterr().err
    assert "warning: brain-tissue may not be made for this image: 74% of its voxels are at or below -500, as air is on CT" in err

    s = CaseSession()
    seen = []
    s.subscribe(GuardChecked, seen.append)
    s.set_image(ct, str(tmp_path / "ct.nii.gz"))
    checked = segmenting.segment_checked(ct, shipped["brain-tissue"], "cpu")
    s.set_run(checked.run, checked.warnings)
    assert seen and seen[-1].warnings == tuple(checked.warnings) and s.warnings
    case_id, _n = review.save_correction(review.correction_request(s, "in_review", "dr.g"), tmp_path / "store")
    with CorrectionsStore(tmp_path / "store") as st:
        assert st.latest(case_id)["card"]["warnings"] == list(checked.warnings)
    assert case_from_session(s).snapshot["warnings"] == list(checked.warnings)
    from export.report import _model_lines

    assert any(line.startswith("WARNING: the image is CT") for line in _model_lines(case_from_session(s).snapshot))
    s.set_image(mr_head(np.random.default_rng(1)), "next")
    assert s.warnings == () and seen[-1].warnings == ()


def test_no_default_model_for_another_modality_on_the_cli(tmp_path, capsys):
    from formats.io import write_image

    import main

    write_image(photo(np.random.default_rng(2)), tmp_path / "photo.png")
    assert main.main(["segment", str(tmp_path / "photo.png"), str(tmp_path / "o.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "no model is made for" in err and "2D images" in err and "--model" in err and not (tmp_path / "o.nii.gz").exists()


def test_a_cine_loop_is_a_2d_image_to_the_guard(shipped):
    """Frames of an ultrasound loop are times, not slices: a 2D model is not told the loop is 3D,
    while a stack of slices still is."""
    from core.volume import Volume
    from inference.training.recipes import RECIPES

    (frame, _truth), = RECIPES["us"]().heldout(1, 41_500)
    frames = np.concatenate([frame.array, frame.array[:, ::-1]], axis=0)  # two frames
    spacing = tuple(frame.geometry.spacing)
    loop = Volume.from_array(frames, spacing=spacing, modality="US", metadata={"frames_are_time": True})
    stack = Volume.from_array(frames, spacing=spacing, modality="US")
    assert loop.is_cine and not stack.is_cine
    card = shipped["us-lesion-2d"]
    assert not any("3D" in w for w in guard.check_image(loop, card)), guard.check_image(loop, card)
    assert any("the image is 3D" in w for w in guard.check_image(stack, card))
