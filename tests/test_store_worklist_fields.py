"""What the worklist shows comes from the store without a patient identifier: the study's
description cleaned of names and IDs, its year only (never month or day), the modality, the latest
correction's reviewer and time; a case reopened from the store and saved again keeps its model."""
import numpy as np
import pydicom

from core.labels import Label, LabelMap, LabelTable
from core.volume import Volume
from formats.dicom.write import write_series
from formats.io import read_image
from store.corrections import CorrectionsStore

TABLE = LabelTable((Label(1, "liver", (200, 100, 60)),))


def _case(seed):
    vol = Volume.from_array(np.random.default_rng(seed).integers(-100, 200, (4, 16, 16)).astype(np.int16),
                            spacing=(0.8, 0.8, 2.5), origin=(10, -20, 30), modality="CT")
    ai = LabelMap(np.zeros((4, 16, 16), np.uint8), vol.geometry, TABLE)
    ai.array[1:3, 4:10, 4:10] = 1
    return vol, ai


def test_study_year_description_reviewer_and_last_save(store_root, tmp_path):
    vol, ai = _case(7)
    folder = tmp_path / "dicom"
    write_series(vol, folder, patient_name="Doe^Jane", patient_id="PID-98765")
    for p in folder.glob("*.dcm"):
        ds = pydicom.dcmread(p)
        ds.StudyDate, ds.StudyDescription = "20240117", "CT ABDOMEN Doe 20240117"
        ds.save_as(p)
    loaded = read_image(folder)
    with CorrectionsStore(store_root) as store:
        case_id, _ = store.save(loaded, ai, ai.copy(), reviewer="dr.a", model_id="m", model_version="2")
        (case,) = store.cases()
        assert case.source_meta["study_year"] == "2024" and case.source_meta["study_description"] == "CT ABDOMEN"
        assert "20240117" not in str(case.source_meta) and "0117" not in str(case.source_meta)
        assert case.reviewer == "dr.a" and case.saved == store.latest(case_id)["saved"] and case.modality == "CT"
        fixed = ai.copy()
        fixed.array[0, 0, 0] = 1
        store.save(loaded, ai, fixed, reviewer="dr.b")  # reopened from the store: no model run named
        case = store.case(case_id)
        assert case.reviewer == "dr.b" and (case.model_id, case.model_version) == ("m", "2")
        assert store.latest(case_id)["n"] == 2
