"""Classic series: sorted by geometry, rescaled, and unclean stacks loaded correctly or refused."""
import shutil

import numpy as np
import pydicom
import pytest

from core.errors import FormatError
from core.volume import Volume
from formats.dicom.load import load_dicom
from formats.dicom.scan import list_series
from formats.dicom.write import write_series


@pytest.fixture
def ramp(tmp_path):
    """10 axial slices 2 mm apart; slice k holds the value 100 * k everywhere."""
    arr = (np.arange(10, dtype=np.int16)[:, None, None] * 100 + np.zeros((1, 8, 9), np.int16))
    vol = Volume.from_array(arr, spacing=(0.5, 0.6, 2.0), origin=(10, 20, 30), modality="CT")
    folder = tmp_path / "s"
    write_series(vol, folder)
    return vol, folder


def _edit(folder, fn):
    for p in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(p)
        if fn(ds, p) is not False:
            ds.save_as(p)


def test_sorted_by_geometry_not_filename(ramp, tmp_path):
    vol, folder = ramp
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for i, p in enumerate(sorted(folder.glob("*.dcm"))):  # names in reverse anatomical order
        shutil.copy(p, shuffled / f"{(7 * i + 3) % 10:02d}_{9 - i}.dcm")
    v = load_dicom(shuffled)
    np.testing.assert_array_equal(v.array, vol.array)
    np.testing.assert_allclose(v.origin, vol.origin)


def test_rescale_slope_intercept_applied(ramp):
    vol, folder = ramp

    def set_rescale(ds, p):
        ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    _edit(folder, set_rescale)
    v = load_dicom(folder)
    assert v.array.dtype == np.int16
    np.testing.assert_array_equal(v.array, vol.array.astype(np.int32) - 1024)

    def fractional(ds, p):
        ds.RescaleSlope = "0.5"
    _edit(folder, fractional)
    v = load_dicom(folder)
    assert v.array.dtype == np.float32
    np.testing.assert_allclose(v.array, vol.array * 0.5 - 1024)


def test_first_slice_arrives_before_the_rest(ramp):
    vol, folder = ramp
    seen = []
    v = load_dicom(folder, on_first_slice=lambda k, sl, geo: seen.append((k, sl.copy(), geo)))
    (k, sl, geo), = seen
    assert k == 5 and np.all(sl == 500)
    assert geo.same_grid(v.geometry)  # the viewer places the early slice where it belongs
    np.testing.assert_array_equal(v.array[k], sl)


def test_missing_slice_is_filled_with_a_warning(ramp):
    vol, folder = ramp
    (folder / "IM00004.dcm").unlink()  # slice k = 3
    v = load_dicom(folder)
    assert v.array.shape == vol.array.shape
    assert any("1 slice(s) missing" in w for w in v.warnings)
    np.testing.assert_allclose(v.array[3], 300)  # linear between 200 and 400
    np.testing.assert_array_equal(v.array[4], vol.array[4])
    np.testing.assert_allclose(v.spacing, vol.spacing)


def test_mostly_missing_series_is_refused(ramp):
    vol, folder = ramp
    for k in (2, 3, 4, 5, 6, 7, 8):
        (folder / f"IM{k:05d}.dcm").unlink()
    with pytest.raises(FormatError, match="not a contiguous volume"):
        load_dicom(folder)


def test_uneven_spacing_resampled(ramp):
    vol, folder = ramp

    def stretch(ds, p):
        k = int(ds.InstanceNumber) - 1
        z = 30 + 2.0 * k + (0.7 if k >= 5 else 0)
        ds.ImagePositionPatient = [10, 20, z]
    _edit(folder, stretch)
    v = load_dicom(folder)
    assert any("uneven slice spacing" in w for w in v.warnings)
    np.testing.assert_allclose(v.spacing[2], 2.0)
    z = v.geometry.index_to_world([0, 0, v.geometry.size[2] - 1])[2]
    assert z <= 30 + 18 + 0.7 + 1e-6


def test_gantry_tilt_corrected(ramp, tmp_path):
    vol, folder = ramp
    arr = np.zeros((10, 8, 9), np.int16)
    arr[:, 4, 2] = 1000  # a line along z at (x=2, y=4) in the *tilted* grid
    tilted = Volume.from_array(arr, spacing=(1.0, 1.0, 2.0), origin=(0, 0, 0), modality="CT")
    folder = tmp_path / "tilt"
    write_series(tilted, folder)

    def shear(ds, p):
        k = int(ds.InstanceNumber) - 1
        ds.ImagePositionPatient = [0, 0.5 * k, 2.0 * k]  # each slice 0.5 mm further in y
        ds.GantryDetectorTilt = "14.0"
    _edit(folder, shear)
    v = load_dicom(folder)
    assert any("gantry tilt 14.0" in w for w in v.warnings)
    # in the corrected (orthogonal) grid the line moves +0.5 voxel in y per slice
    for k in (0, 2, 4, 6):
        col = v.array[k, :, 2].astype(float)
        centre = (col * np.arange(col.size)).sum() / col.sum()
        assert centre == pytest.approx(4 + 0.5 * k, abs=0.01)
    np.testing.assert_allclose(v.direction, np.eye(3), atol=1e-9)


def test_mixed_orientations_become_separate_stacks(ramp, tmp_path):
    vol, folder = ramp

    def rotate_half(ds, p):
        if int(ds.InstanceNumber) > 6:
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal
    _edit(folder, rotate_half)
    series = list_series(folder)
    assert sorted(s.n_images for s in series) == [4, 6]
    assert {s.note.split("(")[-1] for s in series} == {"axial)", "coronal)"}
    v = load_dicom(folder)
    assert v.array.shape[0] == 6 and any("2 series/stacks" in w for w in v.warnings)


def test_phases_one_series_echoes_split_and_unresolvable_duplicates_refused(ramp, tmp_path):
    vol, folder = ramp
    second = tmp_path / "phase2"
    shutil.copytree(folder, second)

    def phase(n):
        def f(ds, p):
            ds.TemporalPositionIdentifier = n
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
        return f
    _edit(folder, phase(1))
    _edit(second, phase(2))
    for p in second.glob("*.dcm"):
        shutil.move(p, folder / ("b" + p.name))
    series = list_series(folder)  # two time points of one series (tests/test_dicom_time.py)
    assert [s.n_images for s in series] == [20] and [len(tp) for tp in series[0].time_points] == [10, 10]
    _edit(folder, lambda ds, p: setattr(ds, "EchoNumbers", 1 + p.name.startswith("b")))
    assert [s.n_images for s in list_series(folder)] == [10, 10]  # two echoes: two stacks
    _edit(folder, lambda ds, p: (setattr(ds, "TemporalPositionIdentifier", 1), setattr(ds, "EchoNumbers", 1)))
    with pytest.raises(FormatError, match="share a slice position"):
        load_dicom(folder)


def test_non_dicom_files_in_folder_are_ignored(ramp):
    vol, folder = ramp
    (folder / "notes.txt").write_text("not dicom")
    (folder / "junk.dcm").write_bytes(b"\x00" * 50)
    v = load_dicom(folder)
    np.testing.assert_array_equal(v.array, vol.array)


def test_dcmtk_validates_what_we_write(ramp):
    """dciodvfy (dicom3tools) finds no errors in our CT series."""
    import subprocess

    vol, folder = ramp
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dicom3tools not installed (make test installs it)")
    out = subprocess.run([exe, str(folder / "IM00001.dcm")], capture_output=True, text=True)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
