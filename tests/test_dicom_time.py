"""DICOM dynamic series (DCE-MR, cardiac phases, perfusion CT): images sharing slice positions at
several times open as one 3D series over time, on the grid a single time point would have."""
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from core import time_series
from core.errors import FormatError
from core.volume import Volume
from formats.dicom import temporal
from formats.dicom.load import load_dicom
from formats.dicom.scan import list_series
from formats.dicom.write import write_series

T, Z = 3, 4  # time points x slices of 16 x 16


def _volume(t: int) -> Volume:
    """Time point t: slice z holds 1000 t + 10 z plus a ramp along x, so any mix-up shows."""
    arr = (1000 * t + 10 * np.arange(Z)[:, None, None] + np.arange(16)[None, None, :]
           + np.zeros((1, 16, 1))).astype(np.int16)
    return Volume.from_array(arr, spacing=(0.7, 0.8, 2.5), origin=(-5, 12, 40), modality="MR")


def _write(folder, tag, order=None):
    """T time points of Z slices in one series; ``tag(ds, t, z)`` sets what tells time points apart."""
    uid = pydicom.uid.generate_uid()
    for t in order or range(T):
        tmp = folder.parent / f"tp{t}"
        write_series(_volume(t), tmp)
        for z, p in enumerate(sorted(tmp.glob("*.dcm"))):
            ds = pydicom.dcmread(p)
            ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, pydicom.uid.generate_uid()
            ds.InstanceNumber = t * Z + z + 1
            for kw in ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionTime", "ContentTime"):
                ds.pop(kw, None)
            tag(ds, t, z)
            folder.mkdir(exist_ok=True)
            ds.save_as(folder / f"{(7 * (t * Z + z)) % 97:03d}.dcm")  # names in no order
        shutil.rmtree(tmp)
    return folder


def _tpi(ds, t, z):
    ds.TemporalPositionIdentifier, ds.NumberOfTemporalPositions = t + 1, T
    ds.TriggerTime = 0  # the same everywhere: the identifier decides


@pytest.fixture
def tpi(tmp_path):
    return _write(tmp_path / "tpi", _tpi, order=[2, 0, 1])


def _check(vol, times=None):
    ts = time_series.time_series_of(vol)
    assert ts is not None and ts.count == T
    single = _volume(0)
    assert vol.geometry.same_grid(single.geometry, tol=1e-9)  # the 3D path's grid, exactly
    for t in range(T):
        time_series.select(vol, t)
        np.testing.assert_array_equal(vol.array, _volume(t).array)
        assert vol.metadata["time_point"] == t
    if times is not None:
        assert [ts.time_s(k) for k in range(T)] == pytest.approx(times)
    return ts


def test_temporal_position_identifier_makes_one_series_over_time(tpi, tmp_path):
    series = list_series(tpi)
    assert len(series) == 1 and series[0].n_images == T * Z
    assert "3 time points x 4 slices (TemporalPositionIdentifier)" in series[0].note
    vol = load_dicom(tpi)
    assert not any("series/stacks" in w for w in vol.warnings)
    ts = _check(vol)
    assert ts.label(1) == "t 2/3"  # no times in these headers: none invented
    # one time point alone, read as a plain 3D series, has the same grid and voxels
    alone = tmp_path / "alone"
    alone.mkdir()
    for p in tpi.glob("*.dcm"):
        if pydicom.dcmread(p, stop_before_pixels=True).TemporalPositionIdentifier == 2:
            shutil.copy(p, alone / p.name)
    one = load_dicom(alone)
    assert time_series.time_series_of(one) is None
    assert one.geometry.same_grid(vol.geometry, tol=0)
    time_series.select(vol, 1)
    np.testing.assert_array_equal(one.array, vol.array)
    # a SEG made on the time point shown references that time point's images
    assert set(vol.metadata["sop_instance_uids"]) == set(one.metadata["sop_instance_uids"])


def test_trigger_time_alone_orders_cardiac_phases(tmp_path):
    def trigger(ds, t, z):
        ds.TriggerTime = f"{t * 37.5:.1f}"
    vol = load_dicom(_write(tmp_path / "trig", trigger, order=[1, 2, 0]))
    ts = _check(vol, times=[0.0, 0.0375, 0.075])
    assert ts.frame_time_ms == pytest.approx(37.5)  # evenly spaced: cine plays in real time
    assert ts.label(2) == "t 3/3  0.075 s"


def test_acquisition_times_changing_slice_by_slice(tmp_path):
    """A 2D multi-slice DCE: each slice has its own AcquisitionTime; the k-th at each position is time point k."""
    def acquired(ds, t, z):
        s = 10 * 3600 + 12 * t + 0.5 * z  # 12 s per dynamic, slices 0.5 s apart
        ds.AcquisitionTime = f"{int(s // 3600):02d}{int(s % 3600 // 60):02d}{s % 60:09.6f}"
    vol = load_dicom(_write(tmp_path / "acq", acquired))
    ts = _check(vol, times=[0.0, 12.0, 24.0])
    assert ts.frame_time_ms == pytest.approx(12000)


def test_incomplete_time_point_is_left_out_with_its_file_named(tpi):
    lost = next(p for p in sorted(tpi.glob("*.dcm"))
                if pydicom.dcmread(p, stop_before_pixels=True).TemporalPositionIdentifier == 3)
    (tpi / lost.name).unlink()
    others = sorted(p.name for p in tpi.glob("*.dcm")
                    if pydicom.dcmread(p, stop_before_pixels=True).TemporalPositionIdentifier == 3)
    vol = load_dicom(tpi)
    ts = time_series.time_series_of(vol)
    assert ts.count == 2
    said = [w for w in vol.warnings if "left out" in w]
    assert len(said) == 1 and "TemporalPositionIdentifier 3" in said[0] and "3 of the 4 slices" in said[0]
    assert others[0] in said[0]
    assert any("declares 3 time points" in w for w in vol.warnings)
    time_series.select(vol, 1)
    np.testing.assert_array_equal(vol.array, _volume(1).array)


def test_incomplete_time_point_without_identifier_is_refused_clearly(tmp_path):
    def acquired(ds, t, z):
        ds.AcquisitionTime = f"1000{10 * t + z:02d}.000000"
    folder = _write(tmp_path / "acq", acquired)
    victim = next(p for p in folder.glob("*.dcm")
                  if str(pydicom.dcmread(p, stop_before_pixels=True).AcquisitionTime).startswith("100011"))
    victim.unlink()  # time point 1 of slice 1
    (info,) = list_series(folder)
    assert "unusable" in info.note
    with pytest.raises(FormatError, match=r"fewer images than the 3 time points .*AcquisitionTime"):
        load_dicom(folder)


def test_positions_repeated_without_any_time_stay_refused(tpi):
    for p in tpi.glob("*.dcm"):
        ds = pydicom.dcmread(p)
        del ds.TemporalPositionIdentifier
        ds.save_as(p)
    with pytest.raises(FormatError, match="share a slice position"):
        load_dicom(tpi)


def test_later_time_points_are_read_when_shown_in_a_decoding_child(tpi):
    from formats.io import read_image

    vol = read_image(tpi, isolate=True)
    ts = time_series.time_series_of(vol)
    assert ts.shown == 0 and ts.reads == []
    time_series.select(vol, 2)
    assert ts.reads == [2]
    np.testing.assert_array_equal(vol.array, _volume(2).array)
    (tpi / next(iter(sorted(p.name for p in tpi.glob("*.dcm"))))).unlink()  # a file gone since
    with pytest.raises(FormatError):
        for k in (0, 1):
            time_series.select(vol, k)


def test_time_values_parse_as_dicom_writes_them():
    assert temporal.seconds("101530.25") == pytest.approx(10 * 3600 + 15 * 60 + 30.25)
    assert temporal.seconds("10:15:30") == 10 * 3600 + 15 * 60 + 30
    assert temporal.seconds("20240101101530.5+0100") == pytest.approx(36930.5)
    assert temporal.seconds("garbage") is None and temporal.seconds("") is None
    assert temporal.number(b" 12.5 ") == 12.5 and temporal.number("nan") is None


def test_info_lists_the_time_points(tpi):
    out = subprocess.run([sys.executable, "main.py", "info", str(tpi)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "3 time points x 4 slices" in out.stdout
    assert "time points: 3" in out.stdout


def test_a_slice_acquired_again_is_no_time_series(tmp_path):
    def acquired(ds, t, z):
        ds.AcquisitionTime = f"1000{10 * t + z:02d}.000000"
    folder = _write(tmp_path / "acq", acquired)
    for p in folder.glob("*.dcm"):  # keep time point 0, and slice 2 of time point 1: acquired again
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        t, z = divmod(int(ds.InstanceNumber) - 1, Z)
        if t > 1 or (t == 1 and z != 2):
            p.unlink()
    (info,) = list_series(folder)
    assert info.time_points is None
    with pytest.raises(FormatError, match="2 images share a slice position"):
        load_dicom(folder)


def test_an_enhanced_multi_frame_file_with_temporal_position_index(tmp_path):
    """One enhanced MR file (per-frame functional groups), frames stored time point 2, 0, 1."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    def item(**kw):
        ds = Dataset()
        for k, v in kw.items():
            setattr(ds, k, v)
        return ds
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.InstanceNumber = "MR", 1
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    order = [(t, z) for t in (2, 0, 1) for z in (3, 1, 0, 2)]
    ds.NumberOfFrames = len(order)
    ds.SharedFunctionalGroupsSequence = Sequence([item(
        PlaneOrientationSequence=Sequence([item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
        PixelMeasuresSequence=Sequence([item(PixelSpacing=[0.8, 0.7], SliceThickness=2.5)]))])
    ds.PerFrameFunctionalGroupsSequence = Sequence([item(
        PlanePositionSequence=Sequence([item(ImagePositionPatient=[-5, 12, 40 + 2.5 * z])]),
        FrameContentSequence=Sequence([item(StackID="1", InStackPositionNumber=z + 1,
                                            TemporalPositionIndex=t + 1)])) for t, z in order])
    ds.PixelData = np.stack([_volume(t).array[z] for t, z in order]).astype("<i2").tobytes()
    ds.save_as(tmp_path / "dce.dcm", enforce_file_format=True)
    (info,) = list_series(tmp_path)
    assert "3 time points x 4 slices (TemporalPositionIdentifier)" in info.note
    _check(load_dicom(tmp_path / "dce.dcm"))
