"""Opening a DICOM folder: the quick header walk finds the same series and frames as pydicom's full
read (and leaves every odd file to it, with its message), and the first slice is shown before the
rest of the pixels are read, equal to the loaded volume's slice on the same grid."""
import random
import shutil
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from app.actions.opening import preview_volume
from core.volume import Volume
from formats.dicom import quick_header
from formats.dicom.load import load_series
from formats.dicom.scan import list_series
from formats.dicom.write import write_series


def _series(folder, nz=12, tilt=False):
    z, y, x = np.mgrid[:nz, :10, :12]
    arr = (z * 100 + y * 7 - x * 3 - 500).astype(np.int16)
    direction = np.eye(3)
    if tilt:  # an oblique stack: exact geometry matters
        c, s = np.cos(0.3), np.sin(0.3)
        direction = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    vol = Volume.from_array(arr, spacing=(0.7, 0.8, 2.5), origin=(-11.5, 20.25, 33), direction=direction,
                            modality="CT")
    write_series(vol, folder)
    return vol


def _rewrite(path, **changes):
    """Save ``path`` with attributes replaced by raw values (as a writer that validates nothing would)."""
    ds = pydicom.dcmread(path)
    for kw, value in changes.items():
        tag = tag_for_keyword(kw)
        if value is None:
            del ds[tag]
        else:
            ds[tag] = RawDataElement(tag, pydicom.datadict.dictionary_VR(tag), len(value), value, 0, False, True)
    ds.save_as(path)


def _same_scan(folder, whole_headers=True):
    """Scan ``folder`` both ways; they must agree on every series, frame, header and skipped file."""
    full, quick = list_series(folder, quick=False), list_series(folder)
    assert [s.key for s in quick] == [s.key for s in full]
    assert quick[0].skipped == full[0].skipped
    for a, b in zip(full, quick):
        assert a.header.filename == b.header.filename and a.note == b.note
        if whole_headers:  # a damaged header may not convert
            assert a.header == b.header and a.summary() == b.summary()
        assert len(a.frames) == len(b.frames)
        for fa, fb in zip(a.frames, b.frames):
            for name in fa.__dataclass_fields__:
                va, vb = getattr(fa, name), getattr(fb, name)
                if name in ("format", "location"):
                    va, vb = vars(va) if va else va, vars(vb) if vb else vb
                if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
                    assert type(va) is type(vb) and va.dtype == vb.dtype and np.array_equal(va, vb), name
                else:
                    assert va == vb, (name, va, vb)
    return quick


def test_quick_headers_find_what_pydicom_finds(tmp_path):
    plain = tmp_path / "plain"
    _series(plain, tilt=True)
    # rescaled, with an undefined-length sequence and a private block before the attributes the scan reads
    other = tmp_path / "other"
    _series(other)
    for p in sorted(other.glob("*.dcm")):
        ds = pydicom.dcmread(p)
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-1024"
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ds.SOPClassUID, pydicom.uid.generate_uid()
        ds.ReferencedImageSequence = Sequence([item])
        ds["ReferencedImageSequence"].is_undefined_length = True
        item.is_undefined_length_sequence_item = True
        ds.private_block(0x0009, "DELINEATE TEST", create=True).add_new(0x01, "LO", "x" * 300)
        ds.InstanceNumber = f" +{ds.InstanceNumber} "
        ds.ImagePositionPatient = [f"{float(v):+.4E}" for v in ds.ImagePositionPatient]
        ds.save_as(p)
    implicit = tmp_path / "implicit"
    _series(implicit)
    for p in sorted(implicit.glob("*.dcm")):
        ds = pydicom.dcmread(p)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(p, implicit_vr=True, little_endian=True)
    for folder in (plain, other, implicit):
        assert all(quick_header.read(p) is not None for p in folder.glob("*.dcm"))  # the quick walk is taken
        found = _same_scan(folder)
        assert len(found) == 1 and found[0].n_images == 12
        # every file but the series' first came the quick way: they share the one description checked
        assert len({id(f.format) for f in found[0].frames}) == 2
    vol = load_series(list_series(other)[0])
    assert vol.array.dtype == np.float32 and vol.array[3, 2, 1] == np.float32((300 + 14 - 3 - 500) * 0.5 - 1024)


def test_odd_members_get_the_full_readers_verdict(tmp_path):
    folder = tmp_path / "s"
    _series(folder, nz=14)
    files = sorted(folder.glob("*.dcm"))
    _rewrite(files[1], ImagePositionPatient=b"abc\\1\\2 ")  # not numbers: a frame without a position
    _rewrite(files[2], ImagePositionPatient=b"1e9\\0\\0 ")  # beyond any patient: refused
    _rewrite(files[3], InstanceNumber=b"x ")
    _rewrite(files[4], PixelSpacing=b"-1\\-1 ")  # this file's shared attributes differ: judged by pydicom
    _rewrite(files[5], SeriesInstanceUID=None)  # a series of its own, named by its path
    _rewrite(files[6], ImagePositionPatient=None)
    data = files[7].read_bytes()
    files[7].write_bytes(data[:len(data) - 50])  # pixel data cut short
    (folder / "notes.txt").write_text("not DICOM")
    found = _same_scan(folder)
    skipped = dict(found[0].skipped)
    assert {str(files[k]) for k in (2, 4, 7)} <= set(skipped)
    assert "ImagePositionPatient" in skipped[str(files[2])] and "file holds only" in skipped[str(files[7])]
    assert "PixelSpacing" in skipped[str(files[4])]


def test_first_slice_is_shown_before_the_rest_is_read(tmp_path):
    folder = tmp_path / "s"
    vol = _series(folder, tilt=True)
    info, = list_series(folder)
    seen = []

    def first(k, plane, geometry):
        seen.append((k, plane.copy(), geometry))
        # change every other file's pixels now: the loaded volume shows whether they were read before
        for f in info.frames:
            if f is not info.frames[k]:
                pixels = np.memmap(f.path, dtype="<i2", mode="r+", offset=f.location.offset, shape=(10, 12))
                pixels += 1
                pixels.flush()
                del pixels

    loaded = load_series(info, on_first_slice=first, workers=1)
    (k, plane, geometry), = seen
    assert k == 6
    assert tuple(geometry.size) == tuple(loaded.geometry.size) and geometry.same_grid(vol.geometry)
    for a in ("spacing", "origin", "direction"):
        np.testing.assert_array_equal(getattr(geometry, a), getattr(loaded.geometry, a))  # the same grid, exactly
    np.testing.assert_array_equal(plane, vol.array[k])  # voxel-exact, and the loaded volume's slice
    np.testing.assert_array_equal(loaded.array[k], plane)
    others = np.arange(12) != k
    np.testing.assert_array_equal(loaded.array[others], vol.array[others] + 1)  # read after the first slice
    shown = preview_volume(k, plane, geometry)  # what the window shows meanwhile: in its place
    np.testing.assert_allclose(shown.geometry.origin, loaded.geometry.index_to_world([0, 0, k]))
    np.testing.assert_array_equal(shown.geometry.direction, loaded.geometry.direction)
    np.testing.assert_array_equal(shown.geometry.spacing, loaded.geometry.spacing)


@pytest.mark.parametrize("cut", [200, 131])
def test_short_or_preamble_less_files_go_the_full_way(tmp_path, cut):
    folder = tmp_path / "s"
    _series(folder, nz=4)
    p = sorted(folder.glob("*.dcm"))[0]
    p.write_bytes(p.read_bytes()[:cut])
    assert quick_header.read(p) is None
    _same_scan(folder)


def test_first_slice_from_the_decoding_child(tmp_path):
    """The window's way: headers scanned and pixels decoded in child processes."""
    from formats import io

    folder = tmp_path / "s"
    vol = _series(folder, nz=9)
    info, = io.list_series(folder, isolate=True)
    seen = []
    loaded = io.load_series(info, on_first_slice=lambda k, plane, geo: seen.append((k, np.array(plane), geo)),
                            isolate=True)
    (k, plane, geometry), = seen
    assert k == 4 and geometry.same_grid(loaded.geometry, tol=0)
    np.testing.assert_array_equal(plane, loaded.array[k])
    np.testing.assert_array_equal(loaded.array, vol.array)


@pytest.mark.parametrize("seed", [0, 1])
def test_damaged_headers_get_the_same_verdict_both_ways(tmp_path, seed):
    """Bytes of a few files' headers overwritten at random (digits and separators half the time): the
    quick walk must find exactly what the full reader finds, skipped files and reasons included."""
    src = tmp_path / "src"
    _series(src, nz=4)
    rng = random.Random(seed)
    for i in range(20):
        folder = tmp_path / f"case{i}"
        shutil.copytree(src, folder)
        for p in rng.sample(sorted(folder.glob("*.dcm"))[1:], rng.randint(1, 3)):
            data = bytearray(p.read_bytes())
            end = data.find(b"\xe0\x7f\x10\x00") + 12
            for _ in range(rng.randint(1, 6)):
                byte = rng.choice(b"0123456789.-+\\ e") if rng.random() < 0.5 else rng.randrange(256)
                data[rng.randrange(132, end)] = byte
            p.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the values it is shown
            _same_scan(folder, whole_headers=False)
        shutil.rmtree(folder)
