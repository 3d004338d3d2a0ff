"""app.actions.segmentation_io: label maps, DICOM SEG and RTSTRUCT loaded onto the open image,
written by the project's own export; objects made for another image are refused with the reason."""
import shutil

import numpy as np
import pydicom
import pytest

from app.actions.segmentation_io import load_segmentation
from core.errors import DelineateError
from core.labels import Label, LabelMap, LabelTable
from core.metrics import dice
from core.volume import Volume
from export.case import ExportRequest, export
from formats.io import read_image, write_image, write_labelmap
from tests.test_export import _blobs, dicom_ct  # noqa: F401 - the small oblique CT series fixture

TABLE = LabelTable((Label(1, "Liver", (220, 120, 80)), Label(2, "Lesion", (250, 250, 20)),
                    Label(4, "Kidney", (20, 200, 250))))


@pytest.fixture
def labels(dicom_ct):  # noqa: F811
    return LabelMap(_blobs(dicom_ct.geometry.shape_zyx), dicom_ct.geometry, TABLE)


def _export(fmt, volume, labels, out):
    return export(ExportRequest(fmt, volume, LabelMap(labels.array, volume.geometry, labels.table), out))[0]


def test_seg_of_the_open_series_loads_exactly(dicom_ct, labels, tmp_path):  # noqa: F811
    seg = _export("seg", dicom_ct, labels, tmp_path / "out" / "case.dcm")
    steps = []
    back = load_segmentation(seg, dicom_ct, progress=lambda f, m="": steps.append(f), isolate=True)
    assert back.geometry.same_grid(dicom_ct.geometry) and np.array_equal(back.array, labels.array)
    assert [(lab.value, lab.name) for lab in back.table] == [(1, "Liver"), (2, "Lesion"), (4, "Kidney")]
    assert steps[0] == 0.0 and steps[-1] == 1.0
    # a folder holding it (beside the image files of another export) loads the same
    assert np.array_equal(load_segmentation(tmp_path / "out", dicom_ct, isolate=False).array, labels.array)


def test_rtstruct_of_the_open_series_is_rasterised_onto_it(dicom_ct, labels, tmp_path):  # noqa: F811
    rt = _export("rtstruct", dicom_ct, labels, tmp_path / "rt.dcm")
    back = load_segmentation(rt, dicom_ct)
    names = {lab.name: lab.value for lab in back.table}
    for lab in labels.table:
        assert dice(back.array == names[lab.name], labels.array == lab.value) > 0.9, lab.name


def test_a_seg_of_another_scan_is_refused_with_the_reason(dicom_ct, labels, tmp_path):  # noqa: F811
    other = Volume(dicom_ct.array[::-1].copy(), dicom_ct.geometry, modality="CT")  # its own series and frame
    seg = _export("seg", other, labels, tmp_path / "other.dcm")
    frame = pydicom.dcmread(seg, stop_before_pixels=True).FrameOfReferenceUID
    with pytest.raises(DelineateError) as exc:
        load_segmentation(seg, dicom_ct)
    assert str(exc.value).startswith(f"{seg}: ") and f"refers to Frame of Reference {frame}" in str(exc.value)
    assert "the open image is on" in str(exc.value)
    rt = _export("rtstruct", other, labels, tmp_path / "other-rt.dcm")
    with pytest.raises(DelineateError, match="structure set refers to Frame of Reference"):
        load_segmentation(rt, dicom_ct)


def test_a_seg_on_the_same_frame_but_other_images_is_refused(dicom_ct, labels, tmp_path):  # noqa: F811
    seg = _export("seg", dicom_ct, labels, tmp_path / "seg.dcm")
    ds = pydicom.dcmread(seg)
    for s in ds.ReferencedSeriesSequence:
        s.SeriesInstanceUID = pydicom.uid.generate_uid()
        for item in s.ReferencedInstanceSequence:
            item.ReferencedSOPInstanceUID = pydicom.uid.generate_uid()
    for frame in ds.PerFrameFunctionalGroupsSequence:
        for der in frame.get("DerivationImageSequence", []):
            for src in der.SourceImageSequence:
                src.ReferencedSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "elsewhere.dcm")
    with pytest.raises(DelineateError, match=r"elsewhere.dcm: .*none of which is in the open image"):
        load_segmentation(tmp_path / "elsewhere.dcm", dicom_ct)


def test_an_image_from_a_nifti_file_takes_a_seg_on_its_grid_only(dicom_ct, labels, tmp_path):  # noqa: F811
    write_image(dicom_ct, tmp_path / "ct.nii.gz")
    nifti = read_image(tmp_path / "ct.nii.gz")
    assert not nifti.metadata.get("series_uid")
    seg = _export("seg", dicom_ct, labels, tmp_path / "seg.dcm")
    assert np.array_equal(load_segmentation(seg, nifti).array, labels.array)  # the SEG's voxels are the image's
    g = dicom_ct.geometry
    shifted = Volume(dicom_ct.array, type(g)(g.size, g.spacing, g.origin + 0.4 * g.direction[:, 0], g.direction))
    with pytest.raises(DelineateError, match="not on the open image's grid"):
        load_segmentation(_export("seg", shifted, labels, tmp_path / "shifted.dcm"), nifti)


def test_label_map_files_and_wrong_files(dicom_ct, labels, tmp_path):  # noqa: F811
    write_labelmap(labels, tmp_path / "lab.nii.gz")
    assert np.array_equal(load_segmentation(tmp_path / "lab.nii.gz", dicom_ct).array, labels.array)
    ct_file = sorted((tmp_path / "src").glob("*.dcm"))[0]
    with pytest.raises(DelineateError, match=r"is a DICOM CT object, not a segmentation"):
        load_segmentation(ct_file, dicom_ct)
    with pytest.raises(DelineateError, match="holds no DICOM SEG or RTSTRUCT"):
        load_segmentation(tmp_path / "src", dicom_ct)
    with pytest.raises(DelineateError, match="does not exist"):
        load_segmentation(tmp_path / "none.dcm", dicom_ct)
    (tmp_path / "two").mkdir()
    for name in ("a.dcm", "b.dcm"):
        shutil.copy(_export("seg", dicom_ct, labels, tmp_path / "x" / name), tmp_path / "two" / name)
    with pytest.raises(DelineateError, match=r"holds 2 segmentation objects \(a.dcm, b.dcm\): choose one file"):
        load_segmentation(tmp_path / "two", dicom_ct)


def test_a_damaged_seg_is_a_clear_error_naming_it(dicom_ct, labels, tmp_path):  # noqa: F811
    seg = _export("seg", dicom_ct, labels, tmp_path / "seg.dcm")
    data = seg.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-len(data) // 4])  # the pixel data cut short
    with pytest.raises(DelineateError, match=r"cut.dcm: "):
        load_segmentation(tmp_path / "cut.dcm", dicom_ct, isolate=True)
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    with pytest.raises(DelineateError, match=r"junk.dcm: "):
        load_segmentation(tmp_path / "junk.dcm", dicom_ct)
