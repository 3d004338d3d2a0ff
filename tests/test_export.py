"""Exports: DICOM SEG / RTSTRUCT round trips on oblique anisotropic sources (validated by
dciodvfy), meshes in patient mm, statistics against hand-computed values, de-identification,
the report, and the CLI."""
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from core.labels import Label, LabelMap, LabelTable
from core.statistics import segment_statistics
from core.volume import Volume
from export.case import ExportRequest, export
from formats.dicom.rtstruct import read_rtstruct, write_rtstruct
from formats.dicom.seg import read_seg, write_seg
from formats.dicom.sources import source_datasets
from formats.dicom.write import write_series
from formats.io import read_image, write_labelmap
from tests.conftest import rotation

PHI = {"PatientName": "Doe^Jane^Q", "PatientID": "PID-778812", "PatientBirthDate": "19610412",
       "AccessionNumber": "ACC99812", "InstitutionName": "Saint Example Hospital",
       "ReferringPhysicianName": "Referrer^Robert", "StudyDate": "20240117", "StudyID": "ST4471",
       "StudyDescription": "CT ABDOMEN JANE DOE FOLLOWUP", "OperatorsName": "Tech^Tina"}


def _dciodvfy_errors(path) -> list[str]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dicom3tools (dciodvfy) not installed; `make test` installs it")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def _blobs(shape, seed=0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape), 1.5)
    lab = np.zeros(shape, np.uint8)
    lab[smooth > np.percentile(smooth, 85)] = 1
    lab[smooth < np.percentile(smooth, 8)] = 4  # a gap in the values: 1 and 4
    lab[2, 5:9, 6:12] = 2
    lab[2, 6:8, 8:10] = 0  # a hole
    lab[4, 3, 3] = lab[4, 4, 4] = 2  # diagonal neighbours only: the marching-squares saddle
    return lab


@pytest.fixture
def dicom_ct(tmp_path):
    """An oblique, anisotropic CT series carrying identifying values; loaded back as a Volume."""
    rng = np.random.default_rng(1)
    arr = rng.integers(-200, 300, size=(8, 22, 26)).astype(np.int16)
    vol = Volume.from_array(arr, spacing=(0.75, 0.6, 2.5), origin=(-100.25, 37.5, 12.125),
                            direction=rotation(0.2, -0.1, 0.35), modality="CT")
    paths = write_series(vol, tmp_path / "src", patient_name=PHI["PatientName"], patient_id=PHI["PatientID"])
    for p in paths:
        ds = pydicom.dcmread(p)
        for kw, value in PHI.items():
            setattr(ds, kw, value)
        ds.add_new(0x00091010, "LO", "private vendor note Doe")  # private tags must go too
        ds.save_as(p)
    return read_image(tmp_path / "src")


@pytest.fixture
def labels(dicom_ct):
    table = LabelTable((Label(1, "Liver", (220, 120, 80)), Label(2, "Lesion", (250, 250, 20)),
                        Label(4, "Kidney", (20, 200, 250))))
    return LabelMap(_blobs(dicom_ct.geometry.shape_zyx), dicom_ct.geometry, table)


def test_seg_round_trip_exact_and_valid_on_oblique_source(dicom_ct, labels, tmp_path):
    assert dicom_ct.geometry.is_oblique()
    path = write_seg(labels, source_datasets(dicom_ct), tmp_path / "seg.dcm")
    assert _dciodvfy_errors(path) == []
    back = read_seg(path, dicom_ct.geometry)
    assert np.array_equal(back.array, labels.array)
    assert [(lab.value, lab.name, lab.color) for lab in back.table] == \
        [(lab.value, lab.name, lab.color) for lab in labels.table]
    assert back.table.get(1).type.meaning == "Liver" and back.table.get(2).category.value == "49755003"
    ds = pydicom.dcmread(path)
    sources = {d.SOPInstanceUID for d in source_datasets(dicom_ct)}
    referenced = {i.ReferencedSOPInstanceUID for s in ds.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
    assert referenced == sources and ds.FrameOfReferenceUID == dicom_ct_frame(dicom_ct)
    per_frame = {f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                 for f in ds.PerFrameFunctionalGroupsSequence}
    assert per_frame <= sources and len(per_frame) > 1  # frames sit on the source planes


def dicom_ct_frame(volume) -> str:
    return source_datasets(volume)[0].FrameOfReferenceUID


def test_seg_on_a_multiframe_source(dicom_ct, labels, tmp_path):
    import highdicom as hd

    originals = [pydicom.dcmread(p) for p in sorted((tmp_path / "src").iterdir())]
    mf = hd.legacy.LegacyConvertedEnhancedCTImage(originals, series_instance_uid=hd.UID(), series_number=2,
                                                   sop_instance_uid=hd.UID(), instance_number=1)
    mf.save_as(tmp_path / "mf.dcm")
    vol = read_image(tmp_path / "mf.dcm")
    assert vol.geometry.same_grid(dicom_ct.geometry, tol=1e-4)
    lm = LabelMap(labels.array, vol.geometry, labels.table)
    path = write_seg(lm, source_datasets(vol), tmp_path / "seg-mf.dcm")
    assert _dciodvfy_errors(path) == []
    assert np.array_equal(read_seg(path, vol.geometry).array, labels.array)
    frames = {int(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
              for f in pydicom.dcmread(path).PerFrameFunctionalGroupsSequence}
    assert frames <= set(range(1, 9)) and len(frames) > 1


def test_compressed_seg_is_valid_and_exact(tmp_path):
    from formats.dicom.seg import JPEG2000_LOSSLESS

    vol = Volume.from_array(np.zeros((5, 40, 48), np.int16), spacing=(0.8, 0.8, 3.0),
                            direction=rotation(0.1, 0.2, -0.3), modality="CT")
    write_series(vol, tmp_path / "ct")
    ct = read_image(tmp_path / "ct")
    lm = LabelMap(_blobs(ct.geometry.shape_zyx), ct.geometry)
    path = write_seg(lm, source_datasets(ct), tmp_path / "j2k.dcm", transfer_syntax=JPEG2000_LOSSLESS)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == JPEG2000_LOSSLESS
    assert _dciodvfy_errors(path) == []
    assert np.array_equal(read_seg(path, ct.geometry).array, lm.array)


def test_fractional_seg_keeps_probabilities_to_one_255th(dicom_ct, labels, tmp_path):
    rng = np.random.default_rng(3)
    probs = rng.random((3,) + labels.array.shape).astype(np.float32)
    path = write_seg(labels, source_datasets(dicom_ct), tmp_path / "frac.dcm", probabilities=probs)
    assert _dciodvfy_errors(path) == []
    lm, back = read_seg(path, dicom_ct.geometry, fractional=True)
    assert back.shape == probs.shape
    assert np.abs(back - probs).max() <= 0.5 / 255 + 1e-6
    assert pydicom.dcmread(path).SegmentationType == "FRACTIONAL"


def test_rtstruct_round_trip_exact_on_oblique_source(dicom_ct, labels, tmp_path):
    path = write_rtstruct(labels, source_datasets(dicom_ct), tmp_path / "rt.dcm")
    assert _dciodvfy_errors(path) == []
    back = read_rtstruct(path, dicom_ct.geometry)
    # our contours run through voxel-edge midpoints, so centre-rule rasterisation gives the voxels back
    names = {lab.name: lab.value for lab in back.table}
    remapped = np.zeros_like(back.array)
    for lab in labels.table:
        remapped[back.array == names[lab.name]] = lab.value
    assert np.array_equal(remapped, labels.array)
    ds = pydicom.dcmread(path)
    refs = {c.ContourImageSequence[0].ReferencedSOPInstanceUID for r in ds.ROIContourSequence
            for c in r.ContourSequence}
    assert refs <= {d.SOPInstanceUID for d in source_datasets(dicom_ct)}


def test_rtstruct_from_another_grid_is_refused(dicom_ct, labels, tmp_path):
    from core.errors import FormatError

    path = write_rtstruct(labels, source_datasets(dicom_ct), tmp_path / "rt.dcm")
    shifted = dicom_ct.geometry.__class__(dicom_ct.geometry.size, dicom_ct.geometry.spacing,
                                          dicom_ct.geometry.origin + dicom_ct.geometry.direction[:, 2] * 1.1,
                                          dicom_ct.geometry.direction)
    with pytest.raises(FormatError, match="off the image's slice planes"):
        read_rtstruct(path, shifted)


def test_stl_bounding_box_matches_segment_world_box(tmp_path):
    from vtkmodules.vtkIOGeometry import vtkSTLReader

    arr = np.zeros((12, 30, 40), np.uint8)
    arr[3:9, 5:25, 10:32] = 1
    flip = np.diag([-1.0, 1.0, -1.0])  # axes flipped against LPS: the mesh must still land in patient mm
    vol = Volume.from_array(np.zeros_like(arr, dtype=np.int16), spacing=(0.7, 0.9, 3.0), origin=(50, -20, 100),
                            direction=flip, modality="CT")
    lm = LabelMap(arr, vol.geometry, LabelTable.from_names(["box"]))
    written = export(ExportRequest("stl", vol, lm, tmp_path / "meshes"))
    reader = vtkSTLReader()
    reader.SetFileName(str(written[0]))
    reader.Update()
    b = np.array(reader.GetOutput().GetBounds()).reshape(3, 2)
    row = segment_statistics(vol, lm)[0]
    lo, hi = np.array(row["bbox_lps_min_mm"]), np.array(row["bbox_lps_max_mm"])
    # flying edges at 0.5 lies on the voxel faces (centre +- half a voxel); smoothing rounds the edges
    assert np.allclose(b[:, 0], lo, atol=0.5 * vol.spacing.max())
    assert np.allclose(b[:, 1], hi, atol=0.5 * vol.spacing.max())
    obj = export(ExportRequest("obj", vol, lm, tmp_path / "objs"))[0]
    assert obj.read_text().startswith("mtllib 001-box.mtl") and obj.with_suffix(".mtl").is_file()


def test_statistics_match_hand_computed_values():
    img = np.zeros((4, 10, 10), np.int16)
    img[1:3, 2:6, 2:7] = 100
    img[1, 2, 2] = 40  # one darker voxel
    lab = np.zeros_like(img, dtype=np.uint8)
    lab[1:3, 2:6, 2:7] = 1  # 2 * 4 * 5 = 40 voxels
    ai = lab.copy()
    ai[2] = 0  # the AI found only the first slice: 20 voxels
    vol = Volume.from_array(img, spacing=(0.5, 0.5, 2.0), origin=(10, 20, 30), modality="CT")
    table = LabelTable.from_names(["organ", "absent"])
    row, absent = segment_statistics(vol, LabelMap(lab, vol.geometry, table), LabelMap(ai, vol.geometry, table))
    values = np.r_[np.full(39, 100.0), 40.0]
    assert row["voxels"] == 40 and row["volume_ml"] == pytest.approx(40 * 0.5 * 0.5 * 2 / 1000)
    assert row["mean"] == pytest.approx(values.mean()) and row["sd"] == pytest.approx(values.std())
    assert (row["min"], row["max"], row["unit"]) == (40.0, 100.0, "HU")
    assert row["bbox_index_min"] == [2, 2, 1] and row["bbox_index_max"] == [6, 5, 2]
    assert row["bbox_lps_min_mm"] == pytest.approx([10.75, 20.75, 31.0])
    assert row["bbox_lps_max_mm"] == pytest.approx([13.25, 22.75, 35.0])
    assert row["dice_vs_ai"] == pytest.approx(2 * 20 / 60) and row["iou_vs_ai"] == pytest.approx(0.5)
    assert row["hd95_vs_ai_mm"] == pytest.approx(2.0)  # the missing slice is one 2 mm step away
    assert absent["voxels"] == 0 and absent["mean"] is None


def _identifying_values(volume) -> list[bytes]:
    ds = source_datasets(volume)
    values = [v.encode() for v in PHI.values()] + [b"private vendor note Doe"]
    for d in ds:
        values += [str(d.SOPInstanceUID).encode(), str(d.SeriesInstanceUID).encode(),
                   str(d.StudyInstanceUID).encode(), str(d.FrameOfReferenceUID).encode()]
    return sorted(set(values))


def test_deidentified_seg_export_has_no_identifying_values(dicom_ct, labels, tmp_path):
    req = ExportRequest("seg", dicom_ct, labels, tmp_path / "out" / "case.dcm", deidentify=True)
    written = export(req)
    assert len(written) == 1 + 8  # the SEG and its de-identified source images
    secrets = _identifying_values(dicom_ct)
    for path in written:
        blob = path.read_bytes()
        leaked = [s for s in secrets if s in blob]
        assert not leaked, f"{path.name} leaks {leaked}"
    seg = pydicom.dcmread(written[0])
    copies = {pydicom.dcmread(p).SOPInstanceUID for p in written[1:]}
    referenced = {i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
    assert referenced == copies  # UIDs remapped consistently: the SEG references its de-identified source
    assert seg.PatientIdentityRemoved == "YES" or pydicom.dcmread(written[1]).PatientIdentityRemoved == "YES"
    # and the de-identified copies still load, with the SEG on them
    copy_vol = read_image(written[1].parent)
    assert np.array_equal(read_seg(written[0], copy_vol.geometry).array, labels.array)


def test_seg_of_a_non_dicom_image_writes_its_source_series(oblique_ct, labels_on, tmp_path):
    written = export(ExportRequest("seg", oblique_ct, labels_on, tmp_path / "seg"))
    assert written[0].name == "seg.dcm" and len(written) == 1 + oblique_ct.geometry.size[2]
    images = read_image(written[1].parent)
    assert np.array_equal(read_seg(written[0], images.geometry).array, labels_on.array)


def test_report_pdf_and_png(dicom_ct, labels, tmp_path):
    model = {"id": "m", "version": "1.0.0", "name": "Phantom model", "architecture": "UNet 3D",
             "trained_on": "Generated only: phantoms", "metrics": {"Dice": 0.8}, "synthetic": True}
    ai = LabelMap(np.where(labels.array == 4, 0, labels.array).astype(np.uint8), labels.geometry, labels.table)
    req = ExportRequest("report", dicom_ct, labels, tmp_path / "report.pdf", ai=ai, model=model,
                        reviewer="Dr Reader", state="approved", deidentify=True)
    pdf = export(req)[0]
    assert pdf.read_bytes().startswith(b"%PDF") and b"/Count 1" in pdf.read_bytes()
    png = export(ExportRequest("report", dicom_ct, labels, tmp_path / "report.png", ai=ai, model=model))[0]
    from PIL import Image

    page = np.asarray(Image.open(png).convert("RGB"))
    assert page.shape[0] > page.shape[1]  # portrait
    red = np.all(np.abs(page.astype(int) - (176, 0, 32)) < 12, axis=-1)
    assert red[: page.shape[0] // 8].mean() > 0.02  # the not-for-clinical-use banner of a synthetic model


def test_statistics_csv_and_json(dicom_ct, labels, tmp_path):
    import csv
    import json

    csv_path = export(ExportRequest("stats", dicom_ct, labels, tmp_path / "stats"))[0]
    assert csv_path.suffix == ".csv"
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["name"] for r in rows] == ["Liver", "Lesion", "Kidney"]
    js = json.loads(export(ExportRequest("stats", dicom_ct, labels, tmp_path / "stats.json"))[0].read_text())
    assert js["segments"][0]["voxels"] == int((labels.array == 1).sum())


def test_cli_export_from_store_case_and_from_path(dicom_ct, labels, tmp_path, monkeypatch):
    import main
    from store.corrections import CorrectionsStore

    store = CorrectionsStore(tmp_path / "store")
    ai = LabelMap(np.where(labels.array == 2, 0, labels.array).astype(np.uint8), labels.geometry, labels.table)
    case_id, _ = store.save(dicom_ct, ai, labels, reviewer="Dr Store")
    store.close()
    out = tmp_path / "rt.dcm"
    rc = main.main(["export", case_id[:8], str(out), "--format", "rtstruct", "--store", str(tmp_path / "store"),
                    "--source", str(tmp_path / "src")])
    assert rc == 0
    back = read_rtstruct(out, dicom_ct.geometry)
    assert np.array_equal(back.array > 0, labels.array > 0)
    ds = pydicom.dcmread(out)
    assert ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID == dicom_ct_frame(dicom_ct)
    write_labelmap(labels, tmp_path / "labels.nii.gz")
    rc = main.main(["export", str(tmp_path / "src"), str(tmp_path / "out.nrrd"), "--format", "nrrd",
                    "--labels", str(tmp_path / "labels.nii.gz")])
    assert rc == 0
    from formats.io import read_labelmap

    assert np.array_equal(read_labelmap(tmp_path / "out.nrrd", dicom_ct).array, labels.array)


def test_gltf_scene_holds_every_segment_in_patient_mm(tmp_path):
    import json

    arr = np.zeros((12, 30, 40), np.uint8)
    arr[3:9, 5:25, 10:20] = 1
    arr[3:9, 5:25, 24:34] = 2
    vol = Volume.from_array(np.zeros_like(arr, dtype=np.int16), spacing=(0.7, 0.9, 3.0), origin=(50, -20, 100),
                            modality="CT")
    lm = LabelMap(arr, vol.geometry, LabelTable.from_names(["left", "right"]))
    path = export(ExportRequest("gltf", vol, lm, tmp_path / "scene"))[0]
    assert path.name == "scene.gltf"
    doc = json.loads(path.read_text())
    assert len(doc["meshes"]) == 2
    colours = sorted(tuple(round(c * 255) for c in m["pbrMetallicRoughness"]["baseColorFactor"][:3])
                     for m in doc["materials"])
    assert colours == sorted(lab.color for lab in lm.table)
    positions = [doc["accessors"][p["attributes"]["POSITION"]] for m in doc["meshes"] for p in m["primitives"]]
    lo = np.min([a["min"] for a in positions], axis=0)
    hi = np.max([a["max"] for a in positions], axis=0)
    rows = segment_statistics(vol, lm)
    want_lo = np.min([r["bbox_lps_min_mm"] for r in rows], axis=0)
    want_hi = np.max([r["bbox_lps_max_mm"] for r in rows], axis=0)
    assert np.allclose(lo, want_lo, atol=0.5 * 3.0) and np.allclose(hi, want_hi, atol=0.5 * 3.0)


_TYPE2_DROPPED = ("StudyID", "AccessionNumber", "ReferringPhysicianName", "PatientBirthDate", "PatientSex",
                  "StudyDate", "StudyTime", "SeriesNumber", "InstanceNumber", "PatientName", "PatientID")


@pytest.fixture
def bare_ct(dicom_ct, tmp_path):
    """The CT with its Type 2 attributes deleted, as anonymisers often leave series."""
    for p in sorted((tmp_path / "src").glob("*.dcm")):
        ds = pydicom.dcmread(p)
        for kw in _TYPE2_DROPPED:
            delattr(ds, kw)
        ds.save_as(p)
    return read_image(tmp_path / "src")


@pytest.mark.parametrize("fmt", ["seg", "rtstruct"])
@pytest.mark.parametrize("deidentify", [False, True])
def test_export_from_a_series_without_type2_attributes_is_valid(bare_ct, labels, tmp_path, fmt, deidentify):
    labels = LabelMap(labels.array, bare_ct.geometry, labels.table)
    written = export(ExportRequest(fmt, bare_ct, labels, tmp_path / "out" / "case.dcm", deidentify=deidentify))
    assert len(written) == 1 + (8 if deidentify else 0)
    for path in written[:2]:  # the SEG/RTSTRUCT and a de-identified source image
        assert _dciodvfy_errors(path) == [], path.name
    ds = pydicom.dcmread(written[0])
    assert ds.StudyID == "" and ds.AccessionNumber == "" and ds.PatientID == ""
    back = read_seg(written[0], bare_ct.geometry) if fmt == "seg" else read_rtstruct(written[0], bare_ct.geometry)
    assert np.array_equal(back.array > 0, labels.array > 0)


def _files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_failed_export_leaves_no_files(dicom_ct, labels, tmp_path, monkeypatch):
    import formats.dicom.seg
    from core.errors import Cancelled
    from core.progress import CancelToken

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the user's own file")

    def broken(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(formats.dicom.seg, "write_seg", broken)  # after the 8 de-identified images were written
    with pytest.raises(OSError, match="No space"):
        export(ExportRequest("seg", dicom_ct, labels, out / "case.dcm", deidentify=True))
    assert _files_under(out) == ["keep.txt"]
    monkeypatch.undo()

    import export.mesh as mesh

    calls = []
    real = mesh.write_surface

    def second_fails(*args, **kw):  # the second of three surfaces cannot be written
        calls.append(1)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real(*args, **kw)

    monkeypatch.setattr(mesh, "write_surface", second_fails)
    with pytest.raises(OSError):
        export(ExportRequest("stl", dicom_ct, labels, out / "surfaces"))
    assert _files_under(out) == ["keep.txt"]
    monkeypatch.undo()

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        export(ExportRequest("seg", dicom_ct, labels, out / "case.dcm", deidentify=True), cancel=token)
    assert _files_under(out) == ["keep.txt"]


def test_export_again_replaces_the_image_folder(oblique_ct, labels_on, tmp_path):
    first = export(ExportRequest("seg", oblique_ct, labels_on, tmp_path / "seg.dcm"))
    (first[1].parent / "IM09999.dcm").write_bytes(b"an earlier export's extra image")
    second = export(ExportRequest("seg", oblique_ct, labels_on, tmp_path / "seg.dcm"))
    assert sorted(p.name for p in second[1].parent.iterdir()) == sorted(p.name for p in second[1:])
    assert _files_under(tmp_path) == sorted(["seg.dcm", "seg-images"] + [f"seg-images/{p.name}" for p in second[1:]])
