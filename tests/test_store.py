"""The corrections store: provenance round-trip, no patient identifiers, migrations, check and
repair - each on both backends (``store_root``, tests/pg_server.py: a folder with SQLite, and a
PostgreSQL database started by the tests with its files in that same folder)."""

import numpy as np
import pydicom
import pytest

from core.editing import History, brush
from core.labels import Label, LabelMap, LabelTable
from core.volume import Volume
from formats.dicom.write import write_series
from formats.io import read_image
from store.corrections import CorrectionsStore, image_hash

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


def test_round_trip_with_provenance(store_root, tmp_path):
    with CorrectionsStore(store_root) as store:
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


def test_patient_identifiers_never_enter_the_store(store_root, tmp_path, request):
    vol, ai, fixed, _h = _case(1)
    folder = tmp_path / "dicom"
    write_series(vol, folder, patient_name="Doe^Jane", patient_id="PID-98765")
    for p in folder.glob("*.dcm"):  # a date of birth and an accession number too
        ds = pydicom.dcmread(p)
        ds.PatientBirthDate = "19610203"
        ds.AccessionNumber = "ACC-55555"
        ds.save_as(p)
    loaded = read_image(folder)
    with CorrectionsStore(store_root) as store:
        store.save(loaded, ai, fixed, reviewer="reviewer-1")
    for path, data in _stored(store_root, tmp_path, request):
        for secret in (b"Doe", b"Jane", b"PID-98765", b"19610203", b"ACC-55555"):
            assert secret not in data, (path, secret)


def _stored(store_root, tmp_path, request):
    """(name, bytes) of everything the store wrote: its files, and the database's dump."""
    out = [(path, path.read_bytes()) for path in (tmp_path / "store").rglob("*") if path.is_file()]
    if str(store_root).startswith("postgresql://"):
        db = str(store_root).split("/")[3].split("?")[0]
        dump = request.getfixturevalue("pg_server").dump(db)
        assert b"COPY public.cases" in dump and b"COPY public.audit" in dump
        out.append(("pg_dump " + db, dump))
    return out


def test_export_approved_corrections_as_nnunet_and_monai(store_root, tmp_path):
    import json

    import main
    from formats.io import read_labelmap

    with CorrectionsStore(store_root) as store:
        ids = []
        for seed in range(5):
            vol, ai, fixed, hist = _case(seed)
            ids.append(store.save(vol, ai, fixed, reviewer="r", state="approved" if seed < 4 else "in_review")[0])
        splits = {c.id: c.split for c in store.cases("approved")}
    assert main.main(["export-dataset", str(tmp_path / "nn"), "--store", str(store_root)]) == 0
    root = tmp_path / "nn" / "Dataset500_Delineate"
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "liver": 1, "tumour": 2}
    assert meta["numTraining"] == list(splits.values()).count("train") == len(list((root / "labelsTr").glob("*")))
    first = sorted((root / "imagesTr").glob("*_0000.nii.gz")) + sorted((root / "imagesTs").glob("*_0000.nii.gz"))
    label_path = first[0].parent.parent / first[0].parent.name.replace("images", "labels") / \
        first[0].name.replace("_0000.nii.gz", ".nii.gz")
    lab = read_labelmap(label_path, read_image(first[0]))
    assert set(np.unique(lab.array)) <= {0, 1, 2}
    assert main.main(["export-dataset", str(tmp_path / "mo"), "--format", "monai", "--store", str(store_root)]) == 0
    dl = json.loads((tmp_path / "mo" / "datalist.json").read_text())
    assert len(dl["training"]) + len(dl["validation"]) == 4 and (tmp_path / "mo" / dl["training"][0]["image"]).is_file()


def _dicom_ct(tmp_path, vol):
    """``vol`` as a CT series whose headers carry identifiers, also inside the descriptions."""
    folder = tmp_path / "dicom"
    write_series(vol, folder, patient_name="Doe^Jane", patient_id="PID-98765")
    for p in folder.glob("*.dcm"):
        ds = pydicom.dcmread(p)
        ds.SeriesDescription = "CT ABDOMEN DOE JANE 20240117 PORTAL"
        ds.StudyDescription = "Follow-up PID-98765 Referrer"
        ds.ReferringPhysicianName = "Referrer^Robert"
        ds.BodyPartExamined, ds.ManufacturerModelName, ds.ConvolutionKernel = "ABDOMEN", "Phantom 9000", "B30f"
        ds.save_as(p)
    return read_image(folder)


def test_ct_stays_ct_with_its_identity_free_metadata(store_root, tmp_path, request):
    import main

    vol, ai, fixed, _h = _case(3)
    loaded = _dicom_ct(tmp_path, vol)
    with CorrectionsStore(store_root) as store:
        case_id, _ = store.save(loaded, ai, fixed, reviewer="r")
        img, _ai, _fixed = store.load(case_id)
        meta = img.metadata["source_meta"]
        assert img.modality == "CT" and store.case(case_id).modality == "CT"
        assert meta["dicom"]["BodyPartExamined"] == "ABDOMEN" and meta["dicom"]["ManufacturerModelName"] == "Phantom 9000"
        assert meta["dicom"]["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.2" and meta["dicom"]["ConvolutionKernel"] == "B30f"
        assert meta["series_description"] == "CT ABDOMEN PORTAL" == img.description  # names and the date gone
        assert meta["study_description"] == "Follow-up"
    for path, data in _stored(store_root, tmp_path, request):
        for secret in (b"Doe", b"DOE", b"Jane", b"JANE", b"98765", b"Referrer", b"20240117"):
            assert secret not in data, (path, secret)
    # exported without its source DICOM: a CT series and a CT report
    assert main.main(["export", case_id, str(tmp_path / "seg.dcm"), "--format", "seg",
                      "--store", str(store_root)]) == 0
    images = sorted((tmp_path / "seg-images").glob("*.dcm"))
    assert images and pydicom.dcmread(images[0]).SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert pydicom.dcmread(tmp_path / "seg.dcm").Modality == "SEG"


def test_case_exports_after_its_model_is_gone(store_root, tmp_path):
    import main

    vol, ai, fixed, _h = _case(4)
    with CorrectionsStore(store_root) as store:
        snapshot = {"id": "retired-model", "version": "7", "name": "Retired model", "architecture": "UNet 3D",
                    "trained_on": "synthetic phantoms", "metrics": {"Dice liver": 0.91}, "synthetic": True}
        case_id, _ = store.save(vol, ai, fixed, reviewer="r", model_id="retired-model", model_version="7", card=snapshot)
        old_id, _ = store.save(_case(5)[0], ai, fixed, reviewer="r", model_id="gone", model_version="1")  # no card
        assert store.latest(case_id)["card"] == snapshot
    for cid, name in ((case_id, "a"), (old_id, "b")):
        assert main.main(["export", cid, str(tmp_path / f"{name}.dcm"), "--format", "seg",
                          "--store", str(store_root)]) == 0
        assert main.main(["export", cid, str(tmp_path / f"{name}.png"), "--format", "report",
                          "--store", str(store_root)]) == 0
    seg = pydicom.dcmread(tmp_path / "a.dcm")
    ident = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (ident.AlgorithmName, ident.AlgorithmVersion) == ("retired-model", "7")
    assert pydicom.dcmread(tmp_path / "b.dcm").SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"


def test_a_version_1_store_is_migrated(store_root, tmp_path):
    from store.corrections import SCHEMA_VERSION

    vol, ai, fixed, _h = _case(6)
    with CorrectionsStore(store_root) as store:
        case_id, _ = store.save(vol, ai, fixed, reviewer="r")
        # back to the schema before card snapshots and team work (version 1 had no version number)
        for statement in ("ALTER TABLE cases DROP COLUMN source_meta", "ALTER TABLE corrections DROP COLUMN card",
                          "ALTER TABLE cases DROP COLUMN assignee", "DROP TABLE locks", "DROP TABLE audit"):
            store.index.execute(statement)
        store.index.set_version(0)
    with CorrectionsStore(store_root) as store:
        assert store.schema_version() == SCHEMA_VERSION
        if store.url is None:
            assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        img, _a, _f = store.load(case_id)
        assert img.modality == "CT" and store.latest(case_id)["card"] is None and store.check() == []
        assert store.save(vol, ai, fixed, card={"id": "x", "version": "1"}) == (case_id, 2)
        assert [e["action"] for e in store.audit(case_id)] == ["saved"]  # the trail starts at the migration


def test_check_reports_and_repair_removes_litter(store_root, tmp_path, capsys):
    import main

    vol, ai, fixed, _h = _case(7)
    with CorrectionsStore(store_root) as store:
        case_id, _ = store.save(vol, ai, fixed, reviewer="r")
        cases = tmp_path / "store" / "cases"
        (cases / case_id / "fix-9-deadbeef.seg.nrrd").write_bytes(b"half a file")  # a killed save's files
        (cases / case_id / ".delineate-abc123").mkdir()
        (cases / case_id / ".delineate-abc123" / "ai-9.seg.nrrd").write_bytes(b"x")
        (cases / "0123456789abcdef").mkdir()  # a new case whose transaction never committed
        (cases / "0123456789abcdef" / "image.nii.gz").write_bytes(b"y")
        (cases / ".delineate-zz").mkdir()
        problems = store.check()
        assert sorted(problems) == sorted([
            f"unreferenced file cases/{case_id}/fix-9-deadbeef.seg.nrrd", f"temp folder cases/{case_id}/.delineate-abc123",
            "unreferenced folder cases/0123456789abcdef", "temp folder cases/.delineate-zz"])
        assert [c.id for c in store.cases()] == [case_id]
    assert main.main(["check-store", "--store", str(store_root)]) == 1
    assert main.main(["check-store", "--repair", "--store", str(store_root)]) == 0
    out = capsys.readouterr().out
    assert out.count("removed ") == 4 and "1 cases, healthy" in out
    with CorrectionsStore(store_root) as store:
        assert store.check() == [] and store.load(case_id)[2].array.shape == fixed.array.shape


def test_repair_removes_links_without_following_them(store_root, tmp_path):
    """A link in the store (to a folder or a file outside it) is litter: repair removes the link and
    never what it points to; it reported such links as removed while they stayed."""
    vol, ai, fixed, _h = _case(8)
    with CorrectionsStore(store_root) as store:
        case_id, _ = store.save(vol, ai, fixed, reviewer="r")
        victim = tmp_path / "victim"
        victim.mkdir()
        (victim / "keep.txt").write_text("mine")
        (tmp_path / "store" / "cases" / case_id / "dir_link").symlink_to(victim)
        (tmp_path / "store" / "cases" / case_id / "file_link").symlink_to(victim / "keep.txt")
        assert len(store.check()) == 2
        assert sorted(store.repair()) == sorted([f"cases/{case_id}/dir_link", f"cases/{case_id}/file_link"])
        assert store.check() == [] and (victim / "keep.txt").read_text() == "mine"
