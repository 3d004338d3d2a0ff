"""Write a grey Volume as a classic single-frame DICOM series (CT or MR image storage)."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from core.errors import FormatError
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.volume import Volume

_SOP = {"CT": CTImageStorage, "MR": MRImageStorage}


def _ds(value: float) -> str:
    """A DS string (<= 16 chars) with as many significant digits as fit."""
    for digits in range(16, 5, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.6g}"


def new_dataset(sop_class: str) -> Dataset:
    """An empty instance of ``sop_class`` with a fresh SOP instance UID and its file meta."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    return ds


def _stored(volume: Volume) -> tuple[np.ndarray, float, float]:
    arr = volume.array
    if volume.is_color:
        raise FormatError(volume.source or None, "colour volumes are not written as CT/MR series")
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= -32768 and arr.max() <= 32767:
        return arr.astype(np.int16), 1.0, 0.0
    lo, hi = float(arr.min()), float(arr.max())
    slope = (hi - lo) / 65535.0 or 1.0
    return np.round((arr - lo) / slope - 32768).astype(np.int16), slope, lo + 32768 * slope


def write_series(volume: Volume, folder: str | Path, patient_name: str = "Anonymous^",
                 patient_id: str = "ANON", series_description: str = "Delineate export",
                 progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
                 study_uid: Optional[str] = None) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    g = volume.geometry
    stored, slope, intercept = _stored(volume)
    modality = volume.modality if volume.modality in _SOP else "CT"
    sop_class = _SOP[modality]
    study_uid = study_uid or generate_uid()
    series_uid, frame_uid = generate_uid(), generate_uid()
    now = datetime.datetime.now()
    row, col = g.direction[:, 0], g.direction[:, 1]
    iop = [_ds(v) for v in np.concatenate([row, col])]
    paths = []
    nz = g.size[2]
    for k in range(nz):
        check(cancel)
        ds = new_dataset(sop_class)
        ds.PatientName, ds.PatientID = patient_name, patient_id
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate = ds.SeriesDate = now.strftime("%Y%m%d")
        ds.StudyTime = now.strftime("%H%M%S")
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = modality, series_description, 1, k + 1
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "", ""
        ds.PatientBirthDate, ds.PatientSex = "", ""
        ds.Laterality, ds.PatientPosition, ds.PositionReferenceIndicator, ds.AcquisitionNumber = "", "", "", ""
        ds.Manufacturer = "Delineate"
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImageOrientationPatient = iop
        ds.ImagePositionPatient = [_ds(v) for v in g.index_to_world((0, 0, k))]
        ds.PixelSpacing = [_ds(g.spacing[1]), _ds(g.spacing[0])]
        ds.SliceThickness = _ds(g.spacing[2])
        ds.SpacingBetweenSlices = _ds(g.spacing[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = g.size[1], g.size[0]
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation = 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
        if modality == "CT":
            ds.RescaleType = "HU"
            ds.KVP = ""
        for w in volume.window_presets[:1]:
            ds.WindowCenter, ds.WindowWidth = _ds(w.center), _ds(w.width)
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        path = folder / f"IM{k + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)  # a new series folder: atomic as a whole, not per file
        paths.append(path)
        progress((k + 1) / nz, f"writing {k + 1}/{nz}")
    return paths
