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
