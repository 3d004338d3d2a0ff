"""The corrections store: provenance round-trip, no patient identifiers, survives SIGKILL."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pydicom
import pytest

from core.editing import History, brush
from core.labels import Label, LabelMap, LabelTable
from core.volume import Volume
from formats.dicom.write import write_series
from formats.io import read_image
from store.corrections import CorrectionsStore, image_hash
from tests.conftest import ROOT

TABLE = LabelTable((Label(1, "liver", (200, 100, 60)), Label(2, "tumour", (250, 250, 0))))


def _case(seed=0):
    rng = np.random.default_rng(seed)
    vol = Volume.from_array(rng.integers(-100, 200, (12, 32, 32)).astype(np.int16), spacing=(0.8, 0.8, 2.5),
                            origin=(10, -20, 30), modality="CT")
    ai = LabelMap(np.zeros(vol.geometry.shape_zyx, np.uint8), vol.geometry, TABLE)
    ai.array[4:8, 8:20, 8:20] = 1
    fixed = ai.copy()
    hist = History(fixed)
    hist.push(brush(fixed, (14, 14, 6), 3.0, 2))
    return vol, ai, fixed, hist


def test_round_trip_with_provenance(tmp_path):
    store = CorrectionsStore(tmp_path / "store")
    vol, ai, fixed, hist = _case()
    case_id, n = store.save(vol, ai, fixed, reviewer="dr.who", model_id="ct-torso-phantom", model_version="1.0.0",
                            edits=hist.summary(), uncertainty=0.12)
    assert n == 1
    info = store.latest(case_id)
    assert info["reviewer"] == "dr.who" and info["model_version"] == "1.0.0"
    assert info["edits"]["2"]["added"] > 0 and info["metrics"]["1"]["dice"] < 1.0
    img, ai2, fixed2 = store.load(case_id)
    np.testing.assert_array_equal(img.array, vol.array)
    assert img.geometry.same_grid(vol.geometry, tol=1e-4) and image_hash(img) == image_hash(vol)
    np.testing.assert_array_equal(fixed2.array, fixed.array)
    assert fixed2.table.get(2).name == "tumour"
    store.set_state(case_id, "approved")
    (case,) = store.cases("approved")
    assert case.split in ("train", "holdout") and case.uncertainty == pytest.approx(0.12)
    # a second correction of the same image is the same case, version 2; version 1 stays
    fixed.array[0, 0, 0] = 1
    assert store.save(vol, ai, fixed, reviewer="dr.who") == (case_id, 2)
    assert store.load(case_id, 1)[2].array[0, 0, 0] == 0 and store.check() == []


def test_patient_identifiers_never_enter_the_store(tmp_path):
    vol, ai, fixed, _h = _case(1)
    folder = tmp_path / "dicom"
    write_series(vol, folder, patient_name="Doe^Jane", patient_id="PID-98765")
    for p in folder.glob("*.dcm"):  # a date of birth and an accession number too
        ds = pydicom.dcmread(p)
        ds.PatientBirthDate = "19610203"
        ds.AccessionNumber = "ACC-55555"
        ds.save_as(p)
    loaded = read_image(folder)
    store = CorrectionsStore(tmp_path / "store")
    store.save(loaded, ai, fixed, reviewer="reviewer-1")
    store.close()
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (b"Doe", b"Jane", b"PID-98765", b"19610203", b"ACC-55555"):
                assert secret not in data, (path, secret)


_SAVER = r"""
import sys, numpy as np
sys.path.insert(0, {root!r})
from tests.test_store import _case
from store.corrections import CorrectionsStore
store = CorrectionsStore({store!r})
vol, ai, fixed, _h = _case(2)
i = 0
print("ready", flush=True)
while True:
    i += 1
    fixed.array[0, 0, 0] = i % 2
    store.save(vol, ai, fixed, reviewer="r{{}}".format(i))
"""


def test_sigkill_during_saves_leaves_the_store_readable(tmp_path):
    store_dir = tmp_path / "store"
    first = CorrectionsStore(store_dir)
    vol, ai, fixed, _h = _case(2)
    case_id, _n = first.save(vol, ai, fixed, reviewer="first")
    first.close()
    rng = np.random.default_rng(0)
    for attempt in range(8):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER.format(root=str(ROOT), store=str(store_dir))],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        store = CorrectionsStore(store_dir)
        assert store.check() == [], attempt
        img, ai2, fixed2 = store.load(case_id)  # the latest committed version loads
        assert fixed2.array.shape == fixed.array.shape
        np.testing.assert_array_equal(store.load(case_id, 1)[2].array, fixed.array)  # the first is intact
        store.close()


def test_export_approved_corrections_as_nnunet_and_monai(tmp_path):
    import json

    import main
    from formats.io import read_labelmap

    store = CorrectionsStore(tmp_path / "store")
    ids = []
    for seed in range(5):
        vol, ai, fixed, hist = _case(seed)
        ids.append(store.save(vol, ai, fixed, reviewer="r", state="approved" if seed < 4 else "in_review")[0])
    splits = {c.id: c.split for c in store.cases("approved")}
    store.close()
    assert main.main(["export-dataset", str(tmp_path / "nn"), "--store", str(tmp_path / "store")]) == 0
    root = tmp_path / "nn" / "Dataset500_Delineate"
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "liver": 1, "tumour": 2}
    assert meta["numTraining"] == list(splits.values()).count("train") == len(list((root / "labelsTr").glob("*")))
    first = sorted((root / "imagesTr").glob("*_0000.nii.gz")) + sorted((root / "imagesTs").glob("*_0000.nii.gz"))
    label_path = first[0].parent.parent / first[0].parent.name.replace("images", "labels") / \
        first[0].name.replace("_0000.nii.gz", ".nii.gz")
    lab = read_labelmap(label_path, read_image(first[0]))
    assert set(np.unique(lab.array)) <= {0, 1, 2}
    assert main.main(["export-dataset", str(tmp_path / "mo"), "--format", "monai", "--store", str(tmp_path / "store")]) == 0
    dl = json.loads((tmp_path / "mo" / "datalist.json").read_text())
    assert len(dl["training"]) + len(dl["validation"]) == 4 and (tmp_path / "mo" / dl["training"][0]["image"]).is_file()
