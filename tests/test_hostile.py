"""Headers that lie are refused before any allocation, with a message naming the file."""
import gzip
import struct

import nibabel as nib
import numpy as np
import pydicom
import pytest

from core.errors import FormatError, TooLargeError
from core.volume import Volume
from formats.dicom.write import write_series
from formats.io import read_image
from formats.limits import memory_budget


def test_budget_is_positive():
    assert memory_budget() > 0


def _nifti_header(dims, dtype=np.int16) -> bytes:
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(dims)
    hdr.set_data_dtype(dtype)
    hdr["vox_offset"] = 352
    hdr["magic"] = b"n+1"
    return hdr.binaryblock + b"\x00" * 4


def test_nifti_declaring_more_than_the_file_holds(tmp_path):
    p = tmp_path / "short.nii"
    p.write_bytes(_nifti_header((64, 64, 64)) + b"\x00" * 1000)
    with pytest.raises(TooLargeError, match="short.nii.*file holds only"):
        read_image(p)


def test_nifti_gzip_bomb_refused_before_allocation(tmp_path, monkeypatch):
    monkeypatch.setenv("DELINEATE_MAX_IMAGE_BYTES", str(64 << 20))
    p = tmp_path / "bomb.nii.gz"
    # 20000^3 int16 declared: 16 TB; the file is a few hundred bytes
    p.write_bytes(gzip.compress(_nifti_header((20000, 20000, 20000)) + b"\x00" * 4096))
    with pytest.raises(TooLargeError, match="bomb.nii.gz.*more than"):
        read_image(p)


def test_nifti_gzip_declaring_more_than_it_inflates_to(tmp_path):
    p = tmp_path / "thin.nii.gz"
    p.write_bytes(gzip.compress(_nifti_header((100, 100, 100)) + b"\x00" * 4096))
    with pytest.raises(TooLargeError, match="thin.nii.gz.*holds only"):
        read_image(p)


def test_mha_and_nrrd_lies(tmp_path, monkeypatch):
    monkeypatch.setenv("DELINEATE_MAX_IMAGE_BYTES", str(64 << 20))
    huge = tmp_path / "huge.mha"
    huge.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 100000 100000 1000\n"
                     b"ElementType = MET_SHORT\nElementDataFile = LOCAL\n" + b"\x00" * 100)
    with pytest.raises(TooLargeError, match="huge.mha"):
        read_image(huge)
    short = tmp_path / "short.mha"
    short.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 10 10 10\n"
                      b"ElementType = MET_SHORT\nElementDataFile = LOCAL\n" + b"\x00" * 100)
    with pytest.raises(TooLargeError, match="short.mha.*holds only"):
        read_image(short)
    nrrd = tmp_path / "short.nrrd"
    nrrd.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10 10\nencoding: raw\nendian: little\n\n"
                     + b"\x00" * 100)
    with pytest.raises(TooLargeError, match="short.nrrd.*holds only"):
        read_image(nrrd)
    bomb = tmp_path / "bomb.nrrd"
    bomb.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 50000 50000 50000\nencoding: gzip\n\n"
                     + gzip.compress(b"\x00" * 1000))
    with pytest.raises(TooLargeError, match="bomb.nrrd"):
        read_image(bomb)


@pytest.fixture
def one_slice(tmp_path):
    write_series(Volume.from_array(np.zeros((1, 16, 16), np.int16), modality="CT"), tmp_path / "d")
    return tmp_path / "d" / "IM00001.dcm"


def test_dicom_rows_columns_frames_bomb(one_slice, monkeypatch):
    monkeypatch.setenv("DELINEATE_MAX_IMAGE_BYTES", str(64 << 20))
    ds = pydicom.dcmread(one_slice)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 1000
    ds.save_as(one_slice)
    with pytest.raises(TooLargeError, match="IM00001.dcm.*more than"):
        read_image(one_slice)


def test_dicom_declaring_more_pixels_than_present(one_slice):
    ds = pydicom.dcmread(one_slice)
    ds.Rows = 64
    ds.save_as(one_slice)
    with pytest.raises(FormatError, match="IM00001.dcm.*holds only"):
        read_image(one_slice)


def test_dicomdir_reference_outside_folder_refused(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset

    d = tmp_path / "cd"
    d.mkdir()
    rec = Dataset()
    rec.DirectoryRecordType = "IMAGE"
    rec.ReferencedFileID = ["..", "..", "etc", "passwd"]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.FileSetID = "X"
    ds.DirectoryRecordSequence = [rec]
    ds.save_as(d / "DICOMDIR", enforce_file_format=True)
    with pytest.raises(FormatError, match="outside its folder"):
        read_image(d)


def test_not_an_image_and_missing_files(tmp_path):
    (tmp_path / "x.nii").write_bytes(b"hello")
    with pytest.raises(FormatError, match="x.nii"):
        read_image(tmp_path / "x.nii")
    with pytest.raises(FormatError, match="does not exist"):
        read_image(tmp_path / "nope.nrrd")
    with pytest.raises(FormatError, match="unknown file type"):
        (tmp_path / "a.txt").write_text("hi")
        read_image(tmp_path / "a.txt")


# ---------------------------------------------------------------- the decode sandbox (formats.sandbox)

def _abort(path, progress=None):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGABRT)  # what GDCM's uncaught exception and ITK's heap check do


def _hang(path, progress=None):
    import time

    time.sleep(60)


def _hog(path, progress=None):
    return np.ones(1 << 30, np.uint8)  # 1 GiB, beyond the child's address-space allowance


def test_sandbox_turns_a_native_crash_into_an_error_naming_the_file(tmp_path):
    from formats import sandbox

    with pytest.raises(FormatError, match=r"x\.mha: the reader crashed \(signal 6, SIGABRT\)"):
        sandbox.call(tmp_path / "x.mha", _abort, str(tmp_path / "x.mha"))
    p = tmp_path / "ok.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4)), str(p))
    assert read_image(p).array.sum() == np.arange(24).sum()  # the caller lives on


def test_sandbox_stops_a_hang_and_a_memory_hog(tmp_path, monkeypatch):
    import time

    from formats import sandbox

    monkeypatch.setenv("DELINEATE_DECODE_TIMEOUT_S", "1")
    t0 = time.monotonic()
    with pytest.raises(FormatError, match="h.dcm: the reader made no progress for 1 s"):
        sandbox.call("h.dcm", _hang, "h.dcm")
    assert time.monotonic() - t0 < 10
    monkeypatch.setenv("DELINEATE_DECODE_MAX_BYTES", str(256 << 20))
    with pytest.raises(FormatError, match="m.nrrd: needs more memory"):
        sandbox.call("m.nrrd", _hog, "m.nrrd")


def test_sandbox_cancel_ends_the_child_at_once(tmp_path):
    import threading
    import time

    from core.errors import Cancelled
    from core.progress import CancelToken
    from formats import sandbox

    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        sandbox.call("h.dcm", _hang, "h.dcm", cancel=token)
    assert time.monotonic() - t0 < 5


def test_sandboxed_reads_equal_in_process_reads(tmp_path):
    z, y, x = np.indices((40, 64, 80))
    arr = (x * 3 + y * 5 - z * 7).astype(np.int16)  # 400 KB: crosses as a shared file
    vol = Volume.from_array(arr, spacing=(0.7, 0.8, 2.5), origin=(-10, 20, 30), modality="CT")
    from formats.io import write_image

    paths = []
    for name in ("v.nii.gz", "v.nii", "v.mha", "v.nrrd"):
        write_image(vol, tmp_path / name)
        paths.append(tmp_path / name)
    write_series(vol, tmp_path / "series")
    paths.append(tmp_path / "series")
    for p in paths:
        seen, first = [], []
        a = read_image(p, isolate=False)
        b = read_image(p, lambda f, m: seen.append(f), isolate=True,
                       on_first_slice=lambda k, plane, geo: first.append((k, plane.shape)))
        assert np.array_equal(a.array, b.array) and a.array.dtype == b.array.dtype, p.name
        assert a.geometry.same_grid(b.geometry, tol=0) and a.modality == b.modality, p.name
        assert seen and seen[-1] == 1.0
        b.array[0, 0, 0] = 123  # the mapped array is an ordinary writable array
    assert first == [(20, (64, 80))]  # the series' middle slice came through before the rest


# ---------------------------------------------------------------- headers ITK would choke on

def _mha(tmp_path, name, extra=b"", ndims=b"3", compressed=False, datafile=b"LOCAL", data=None):
    import zlib

    raw = np.arange(4 * 5 * 6, dtype=np.int16).tobytes() if data is None else data
    if compressed:
        raw = zlib.compress(raw)
    p = tmp_path / name
    p.write_bytes(b"ObjectType = Image\nNDims = " + ndims + b"\nDimSize = 6 5 4\nElementType = MET_SHORT\n"
                  + (b"CompressedData = True\n" if compressed else b"") + extra
                  + b"ElementDataFile = " + datafile + b"\n" + (raw if datafile == b"LOCAL" else b""))
    return p


@pytest.mark.parametrize("compressed", [False, True])
def test_mha_ndims_99_is_refused_before_itk(tmp_path, compressed):
    p = _mha(tmp_path, "nd99.mha", ndims=b"99", compressed=compressed)
    with pytest.raises(FormatError, match="nd99.mha: NDims = 99"):
        read_image(p, isolate=False)  # in this process: ITK never sees it
    assert read_image(_mha(tmp_path, "ok.mha", compressed=compressed)).array.shape == (4, 5, 6)


def test_compressed_mha_that_inflates_to_less_than_declared(tmp_path):
    p = _mha(tmp_path, "thin.mha", compressed=True, data=bytes(100))
    with pytest.raises(TooLargeError, match="thin.mha.*uncompressed MetaImage data.*holds only 100 bytes"):
        read_image(p)


@pytest.mark.parametrize("datafile", [b"../../etc/passwd", b"/etc/passwd", b"../secret.raw"])
def test_detached_data_files_stay_in_the_headers_folder(tmp_path, datafile):
    (tmp_path / "secret.raw").write_bytes(bytes(240))
    d = tmp_path / "case"
    d.mkdir()
    mhd = _mha(d, "x.mhd", datafile=datafile)
    with pytest.raises(FormatError, match="x.mhd: ElementDataFile .* outside the header's folder"):
        read_image(mhd)
    nhdr = d / "x.nhdr"
    nhdr.write_bytes(b"NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 4 4\nencoding: raw\ndata file: "
                     + datafile + b"\n\n")
    with pytest.raises(FormatError, match="x.nhdr: data file .* outside the header's folder"):
        read_image(nhdr)
    (d / "inside.raw").write_bytes(np.arange(120, dtype=np.int16).tobytes() * 2)
    assert read_image(_mha(d, "ok.mhd", datafile=b"inside.raw")).array.shape == (4, 5, 6)


# ---------------------------------------------------------------- geometry and rescale sanity

@pytest.mark.parametrize("field, value, message", [
    (b"ElementSpacing", b"1e308 1 1", "spacing must be between 1e-05 and 100000 mm"),
    (b"ElementSpacing", b"0 1 1", "ElementSpacing|spacing"),
    (b"ElementSpacing", b"nan 1 1", "ElementSpacing holds non-finite"),
    (b"Offset", b"1e300 0 0", "origin must lie within"),
    (b"TransformMatrix", b"nan 0 0 0 1 0 0 0 1", "TransformMatrix holds non-finite"),
    (b"TransformMatrix", b"1 1 0 0 1 0 0 0 1", "direction is not orthonormal"),
])
def test_mha_nonsense_geometry_is_refused_with_the_field_named(tmp_path, field, value, message):
    p = _mha(tmp_path, "g.mha", extra=field + b" = " + value + b"\n")
    with pytest.raises(FormatError, match="g.mha: .*(" + message + ")"):
        read_image(p)


def _nifti_with(tmp_path, name, **fields):
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((4, 4, 4))
    hdr.set_data_dtype(np.int16)
    hdr.set_sform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    hdr["vox_offset"] = 352
    for k, v in fields.items():
        hdr[k] = v
    p = tmp_path / name
    p.write_bytes(hdr.binaryblock + b"\x00" * 4 + np.arange(64, dtype=np.int16).tobytes())
    return p


@pytest.mark.parametrize("fields, message", [
    ({"scl_slope": np.inf}, "scl_slope is inf"),
    ({"scl_slope": 2.0, "scl_inter": np.nan}, "(scl_inter is nan|invalid intercept nan)"),
    ({"scl_slope": 1e35}, "scl_slope 1e\\+35 .* beyond float32"),
    ({"srow_x": [np.nan, 0, 0, 0]}, "sform .* non-finite"),
    ({"srow_x": [1e9, 0, 0, 0]}, "spacing must be between 1e-05 and 100000 mm"),
    ({"srow_x": [1, 0, 0, 1e20]}, "origin must lie within"),
])
def test_nifti_nonsense_geometry_and_rescale_are_refused(tmp_path, fields, message):
    with pytest.raises(FormatError, match="n.nii: .*" + message):
        read_image(_nifti_with(tmp_path, "n.nii", **fields))


def test_nifti_scaling_and_no_scaling_markers(tmp_path):
    v = read_image(_nifti_with(tmp_path, "s.nii", scl_slope=0.5, scl_inter=10.0))
    assert v.array.dtype == np.float32 and v.value_range() == (10.0, 10.0 + 63 * 0.5)
    v = read_image(_nifti_with(tmp_path, "u.nii", scl_slope=np.nan))  # nibabel writes NaN for "none"
    assert v.array.dtype == np.int16 and v.value_range() == (0.0, 63.0)


def test_shared_output_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    """/dev/shm may be missing or tiny (64 MiB in Docker): the image then crosses through $TMPDIR."""
    import tempfile

    from formats import sandbox

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setitem(sandbox._scratch, "prefix", str(tmp_path / "no-such-folder" / "delineate-decode-1-x"))
    monkeypatch.setitem(sandbox._scratch, "arrays", [])
    arr = sandbox.output_array((64, 64, 512), np.int16)
    arr[...] = 7
    (name,) = [n for _, n in sandbox._scratch["arrays"]]
    assert name.startswith(str(tmp_path / "delineate-decode-1-x")) and np.all(arr == 7)


@pytest.mark.parametrize("spacing, refused", [(["1e-300", "1e-300"], True), (["-1", "-1"], True),
                                              (["0", "0"], False)])
def test_dicom_pixel_spacing_that_is_no_size_is_refused_with_the_field_named(tmp_path, spacing, refused):
    """1e-300 mm passed every check and broke the NIfTI writer (traceback); -1 loaded as 1 mm with a
    'no PixelSpacing' warning. All zeros is how some secondary captures say 'unknown'."""
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelSpacing = spacing
    ds.save_as(tmp_path / "s.dcm")
    if refused:
        with pytest.raises(FormatError, match=r"s\.dcm: PixelSpacing is .*not a pixel size"):
            read_image(tmp_path / "s.dcm")
    else:
        assert any("no PixelSpacing" in w for w in read_image(tmp_path / "s.dcm").warnings)


def test_images_wider_than_nifti1_allows_round_trip_as_nifti2(tmp_path):
    """NIfTI-1 sizes are int16: a 40000-pixel-wide strip gave a traceback on convert (and on store save)."""
    arr = (np.arange(2 * 40000) % 3000).astype(np.int16).reshape(1, 2, 40000)
    vol = Volume.from_array(arr, spacing=(0.1, 0.2, 1.0), origin=(3.0, -4.0, 5.0), modality="US")
    from formats.io import write_image

    write_image(vol, tmp_path / "wide.nii.gz")
    back = read_image(tmp_path / "wide.nii.gz")
    assert np.array_equal(back.array, arr) and back.geometry.same_grid(vol.geometry, tol=1e-5)
    assert nib.load(str(tmp_path / "wide.nii.gz")).header.sizeof_hdr == 540  # NIfTI-2
