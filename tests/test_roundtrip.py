"""Geometry is sacred: an oblique, anisotropic volume and its labels survive every format."""
import numpy as np
import pytest

from core.labels import LabelMap
from formats.io import read_image, read_labelmap, write_image, write_labelmap

TOL = 1e-6


def assert_same_geometry(a, b, tol=TOL):
    assert a.size == b.size
    np.testing.assert_allclose(b.spacing, a.spacing, rtol=0, atol=tol)
    np.testing.assert_allclose(b.origin, a.origin, rtol=0, atol=tol)
    np.testing.assert_allclose(b.direction, a.direction, rtol=0, atol=tol)


def test_image_dicom_nifti_nrrd_mha_chain(tmp_path, oblique_ct):
    landmark = np.array([5, 13, 4])  # (i, j, k)
    world = oblique_ct.geometry.index_to_world(landmark)
    write_image(oblique_ct, tmp_path / "dicom")
    v = read_image(tmp_path / "dicom")
    assert v.warnings == [] and v.modality == "CT"
    assert [w.center for w in v.window_presets] == [40]
    chain = [v]
    for name in ("a.nii.gz", "b.nrrd", "c.mha", "d.nii", "e.mhd"):
        write_image(chain[-1], tmp_path / name)
        chain.append(read_image(tmp_path / name))
    for step in chain:
        assert_same_geometry(oblique_ct.geometry, step.geometry)
        np.testing.assert_array_equal(step.array, oblique_ct.array)
        np.testing.assert_allclose(step.geometry.index_to_world(landmark), world, atol=TOL)
        assert step.array[landmark[2], landmark[1], landmark[0]] == oblique_ct.array[4, 13, 5]


@pytest.mark.parametrize("chain", [("x.nii.gz", "y.nrrd", "z.mha", "w.seg.nrrd", "v.nii")])
def test_labelmap_chain_keeps_table(tmp_path, labels_on, chain):
    current = labels_on
    for name in chain:
        write_labelmap(current, tmp_path / name)
        current = read_labelmap(tmp_path / name)
        assert_same_geometry(labels_on.geometry, current.geometry)
        np.testing.assert_array_equal(current.array, labels_on.array)
        assert current.table == labels_on.table, name
    liver = current.table.by_name("liver")
    assert liver.type.value == "10200004" and liver.color == (220, 120, 80)


def test_nrrd_carries_slicer_segment_fields(tmp_path, labels_on):
    import SimpleITK as sitk

    from formats.labeltable_io import from_slicer_fields

    write_labelmap(labels_on, tmp_path / "s.seg.nrrd")
    img = sitk.ReadImage(str(tmp_path / "s.seg.nrrd"))
    meta = {k: img.GetMetaData(k) for k in img.GetMetaDataKeys()}
    assert meta["Segment0_Name"] == "Liver" and meta["Segment1_LabelValue"] == "3"
    table = from_slicer_fields(meta)  # what a file written by 3D Slicer would give us
    assert [lab.name for lab in table] == ["Liver", "Tumour"]
    assert table.get(1).type.meaning == "Liver" and table.get(3).color == (250, 250, 20)


def test_png_and_tiff_keep_2d_geometry_and_labels(tmp_path, labels_on, oblique_ct):
    one = LabelMap(labels_on.array[2:3].copy(), labels_on.geometry.with_size(
        (labels_on.geometry.size[0], labels_on.geometry.size[1], 1)), labels_on.table)
    for name in ("l.png", "l.tif"):
        write_labelmap(one, tmp_path / name)
        back = read_labelmap(tmp_path / name)
        assert_same_geometry(one.geometry, back.geometry)
        np.testing.assert_array_equal(back.array, one.array)
        assert back.table == one.table
    write_image(oblique_ct, tmp_path / "stack.tif")
    back = read_image(tmp_path / "stack.tif")
    np.testing.assert_array_equal(back.array, oblique_ct.array)
    assert_same_geometry(oblique_ct.geometry, back.geometry)


def test_rgb_tile_round_trip(tmp_path):
    from core.volume import Volume

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (1, 40, 50, 3), dtype=np.uint8)
    v = Volume.from_array(rgb, spacing=(0.00025 * 1000, 0.00025 * 1000, 1))
    for name in ("t.png", "t.tif", "t.nii.gz", "t.nrrd"):
        write_image(v, tmp_path / name)
        back = read_image(tmp_path / name)
        assert back.is_color and back.array.shape == rgb.shape, name
        np.testing.assert_array_equal(back.array, rgb)
        np.testing.assert_allclose(back.spacing[:2], v.spacing[:2], rtol=1e-6)


def test_png_without_our_metadata_takes_dpi_spacing(tmp_path):
    from PIL import Image

    Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(tmp_path / "p.png", dpi=(254, 127))
    v = read_image(tmp_path / "p.png")
    np.testing.assert_allclose(v.spacing[:2], (0.1, 0.2), rtol=1e-3)
    assert v.array.shape == (1, 20, 30)


def test_nifti_qform_only_and_sform_preference(tmp_path):
    import nibabel as nib

    data = np.zeros((4, 5, 6), np.int16)
    q = np.diag([2.0, 3.0, 4.0, 1.0])
    q[:3, 3] = (10, 20, 30)
    img = nib.Nifti1Image(data, None)
    img.set_qform(q, code=1)
    img.set_sform(None, code=0)
    nib.save(img, tmp_path / "q.nii")
    v = read_image(tmp_path / "q.nii")
    np.testing.assert_allclose(v.spacing, (2, 3, 4))
    np.testing.assert_allclose(v.origin, (-10, -20, 30))  # RAS (10, 20, 30) is LPS (-10, -20, 30)
    s = q.copy()
    s[:3, 3] = (1, 2, 3)
    img.set_sform(s, code=2)
    nib.save(img, tmp_path / "s.nii")
    assert read_image(tmp_path / "s.nii").metadata["nifti_affine_from"] == "sform"
    np.testing.assert_allclose(read_image(tmp_path / "s.nii").origin, (-1, -2, 3))
