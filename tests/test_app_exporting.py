"""app.actions.exporting without Qt: a store case found by id prefix (refused when ambiguous or
unknown), re-linked only to its own original image, and written through export.case."""
import numpy as np
import pydicom
import pytest

from app.actions.exporting import case_from_store, export_case, find_case, load_case, relink
from core.errors import DelineateError
from core.labels import Label, LabelMap, LabelTable
from formats.io import read_image, read_labelmap, write_image, write_labelmap
from store.corrections import CorrectionsStore
from tests.test_store import _case as _stored_case

TABLE = LabelTable((Label(1, "liver", (200, 100, 60)),))


def _case(seed):
    """(image, AI draft, corrected) as the store tests make them: a CT with liver, tumour painted in."""
    return _stored_case(seed)[:3]


@pytest.fixture
def store(tmp_path):
    """17 cases: two of them share at least their first hex digit."""
    root = tmp_path / "store"
    with CorrectionsStore(root) as st:
        ids = [st.save(*_case(seed), reviewer="dr.a", model_id="gone-model", model_version="2")[0]
               for seed in range(17)]
    return root, ids


def test_a_case_by_id_prefix_and_the_refusals(store):
    root, ids = store
    with CorrectionsStore(root) as st:
        assert find_case(st, ids[5][:10]).id == ids[5]
        firsts = [i[0] for i in ids]
        shared = next(c for c in firsts if firsts.count(c) > 1)
        with pytest.raises(DelineateError, match="neither a file nor a unique store case id"):
            find_case(st, shared)
        with pytest.raises(DelineateError, match="neither a file nor a store case id"):
            find_case(st, "zz-no-such-case")
    case = load_case(ids[3][:8], store=root)  # not a file, so a store case
    vol, _ai, fixed = _case(3)
    assert case.case_id == ids[3] and case.reviewer == "dr.a" and case.state == "in_review"
    assert case.model_ref == "gone-model/2" and not case.model_named and case.snapshot is None
    assert np.array_equal(case.labelmap.array, fixed.array) and np.array_equal(case.volume.array, vol.array)


def test_relinking_refuses_a_different_image(store, tmp_path):
    root, ids = store
    write_image(_case(4)[0], tmp_path / "other.nii.gz")
    with pytest.raises(DelineateError, match=f"other.nii.gz is not the image of case {ids[3]}"):
        case_from_store(ids[3], root, source=str(tmp_path / "other.nii.gz"))
    write_image(_case(3)[0], tmp_path / "same.nii.gz")
    case = case_from_store(ids[3], root, source=str(tmp_path / "same.nii.gz"), reviewer="dr.b")
    assert case.volume.source.endswith("same.nii.gz") and case.reviewer == "dr.b"
    assert case.labelmap.geometry is case.volume.geometry and case.ai.geometry is case.volume.geometry
    lm = LabelMap(np.zeros(_case(3)[0].geometry.shape_zyx, np.uint8), _case(3)[0].geometry, TABLE)
    with pytest.raises(DelineateError, match="content differs"):
        relink(lm, [lm], str(tmp_path / "other.nii.gz"), "0" * 64, "abc")


def test_export_a_store_case_as_nifti_and_seg(store, tmp_path):
    root, ids = store
    case = load_case(ids[0], store=root)
    (nifti,) = export_case("nifti", case, tmp_path / "out" / "case")
    assert nifti.name == "case.nii.gz"  # the format's suffix added
    back = read_labelmap(nifti)
    assert np.array_equal(back.array, _case(0)[2].array) and back.table.get(2).name == "tumour"
    written = export_case("seg", case, tmp_path / "out" / "seg.dcm")
    seg = pydicom.dcmread(written[0])
    assert seg.Modality == "SEG" and len(seg.SegmentSequence) == 2
    ident = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert ident.AlgorithmName == "gone-model"  # the model is gone: what the store knew of it
    with pytest.raises(DelineateError, match="no model 'gone-model'"):
        export_case("seg", case, tmp_path / "out" / "frac.dcm", fractional=True)  # needs the model itself
    assert not (tmp_path / "out" / "frac.dcm").exists()


def test_export_an_image_with_its_label_maps(tmp_path):
    vol, ai, fixed = _case(9)
    write_image(vol, tmp_path / "img.nrrd")
    write_labelmap(fixed, tmp_path / "fixed.seg.nrrd")
    write_labelmap(ai, tmp_path / "ai.seg.nrrd")
    with pytest.raises(DelineateError, match="needs --labels"):
        load_case(str(tmp_path / "img.nrrd"))
    case = load_case(str(tmp_path / "img.nrrd"), labels=tmp_path / "fixed.seg.nrrd", ai=tmp_path / "ai.seg.nrrd",
                     reviewer="dr.c")
    (stats,) = export_case("stats", case, tmp_path / "stats.csv")
    text = stats.read_text()
    assert "liver" in text and "tumour" in text
    probs = np.zeros((2, *vol.geometry.shape_zyx), np.float32)
    probs[0][fixed.array == 1] = 0.75  # the run's probabilities: a fractional SEG without running a model
    case.probabilities = probs
    seg = pydicom.dcmread(export_case("seg", case, tmp_path / "frac.dcm", fractional=True)[0])
    assert seg.SegmentationType == "FRACTIONAL"
    assert read_image(tmp_path / "img.nrrd").geometry.same_grid(case.labelmap.geometry, tol=1e-6)
