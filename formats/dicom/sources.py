"""The DICOM source instances a loaded Volume came from: what SEG and RTSTRUCT objects reference."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from core.errors import FormatError
from core.volume import Volume
from formats.dicom.scan import list_series


def source_files(volume: Volume) -> list[Path]:
    src, uid = Path(volume.source or "."), volume.metadata.get("series_uid")
    if not uid or not src.exists():
        raise FormatError(volume.source or None, "the image was not loaded from DICOM (or its files are gone)")
    if src.is_file():
        return [src]
    files = sorted({f for s in list_series(src) if s.series_uid == uid for f in s.files})
    if not files:
        raise FormatError(src, f"series {uid} is no longer in this folder")
    return files


def source_datasets(volume: Volume, pixels: bool = False) -> list[pydicom.Dataset]:
    """Headers (or whole datasets) of the volume's source instances, in file order."""
    return [pydicom.dcmread(f, stop_before_pixels=not pixels) for f in source_files(volume)]


def _positions(ds: pydicom.Dataset):
    """(position, frame number or None) for each image plane in a source instance."""
    if "PerFrameFunctionalGroupsSequence" in ds:
        for n, item in enumerate(ds.PerFrameFunctionalGroupsSequence, start=1):
            pos = item.get("PlanePositionSequence")
            if pos:
                yield [float(v) for v in pos[0].ImagePositionPatient], n
    elif "ImagePositionPatient" in ds:
        yield [float(v) for v in ds.ImagePositionPatient], None


def plane_references(sources: list[pydicom.Dataset], geometry) -> dict[int, tuple[str, str, object]]:
    """Slice k of ``geometry`` -> (SOP class, SOP instance, frame) of the source plane lying on it
    (within 1 % of a slice), for the slices that have one."""
    out = {}
    for ds in sources:
        for pos, frame in _positions(ds):
            ijk = geometry.world_to_index(np.asarray(pos))
            k = int(round(ijk[2]))
            if abs(ijk[2] - k) < 0.01 and abs(ijk[0]) < 0.01 and abs(ijk[1]) < 0.01 and 0 <= k < geometry.size[2]:
                out[k] = (str(ds.SOPClassUID), str(ds.SOPInstanceUID), frame)
    return out
