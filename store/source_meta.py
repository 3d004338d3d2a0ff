"""What the store keeps about an image's source beyond voxels and geometry: what export and the
worklist need (modality, body part, scanner model, acquisition parameters, window presets, a
series description, the study's year), never who the patient is.

DICOM attributes are kept only from an allow-list of acquisition attributes that PS3.15 Annex E
does not treat as identifying. Free-text descriptions are kept as the Clean Descriptors option
allows: every word that is part of a person's name, an ID, an accession number or a date found
anywhere in the header is removed, and long digit runs (dates, IDs) go too. Of the study date only
the year is kept (``study_year``, for the worklist): HIPAA's Safe Harbor method lets the year of a
date stay, never its month or day.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from core.volume import Volume

_KEPT = ("SOPClassUID", "Modality", "BodyPartExamined", "Manufacturer", "ManufacturerModelName",
         "ImageType", "PhotometricInterpretation", "BitsStored", "RescaleType", "SliceThickness", "KVP",
         "ConvolutionKernel", "MagneticFieldStrength", "RepetitionTime", "EchoTime", "InversionTime",
         "FlipAngle", "ScanningSequence", "SequenceVariant", "MRAcquisitionType", "PatientPosition")
_DESCRIPTIONS = {"SeriesDescription": "series_description", "StudyDescription": "study_description",
                 "ProtocolName": "protocol_name"}
_IDENTIFIERS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "PatientBirthDate",
                "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstitutionName",
                "InstitutionAddress", "StationName", "DeviceSerialNumber", "RequestedProcedureID")
_WORD = re.compile(r"[A-Za-z0-9]+")


def _plain(value) -> object:
    """A JSON-safe copy of a DICOM value (numbers stay numbers, multi-values become lists)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value) if type(value).__name__ in ("DSfloat", "DSdecimal", "IS") else str(value)
    except (TypeError, ValueError):
        return str(value)


def _identifying_words(ds) -> set[str]:
    """Lower-case words of every person name (any PN element, nested too) and identifier."""
    words: set[str] = set()

    def add(text) -> None:
        words.update(w.lower() for w in _WORD.findall(str(text)) if len(w) > 1)

    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value:
            for name in (elem.value if elem.VM > 1 else [elem.value]):
                add(name)
    for kw in _IDENTIFIERS:
        if ds.get(kw):
            add(ds.get(kw))
    return words


def clean_description(text: str, identifying: set[str]) -> str:
    """``text`` without identifying words and without digit runs of 6 or more (dates, IDs)."""
    kept = [w for w in re.split(r"(\s+)", str(text))
            if not any(p.lower() in identifying for p in _WORD.findall(w)) and not re.search(r"\d{6,}", w)]
    return re.sub(r"\s+", " ", "".join(kept)).strip(" -_/^,;")


def identity_free(volume: Volume, header=None) -> dict:
    """The store's record of ``volume``'s source; ``header``: a DICOM dataset of the series
    (read from the volume's source files when it came from DICOM and none is given)."""
    meta: dict = {"modality": volume.modality,
                  "window_presets": [[w.name[:32], float(w.center), float(w.width)] for w in volume.window_presets]}
    if volume.metadata.get("photometric"):
        meta["photometric"] = str(volume.metadata["photometric"])
    # what the source did not say (pixel size, orientation) and a loop's timing: the NIfTI the
    # store keeps cannot say it, and a reopened case must not gain a 1 mm spacing or R/L letters
    plane = {"spacing_known": volume.spacing_known, "orientation_known": volume.orientation_known,
             "frame_time_ms": volume.frame_time_ms, "frames_are_time": bool(volume.metadata.get("frames_are_time"))}
    if plane != {"spacing_known": True, "orientation_known": True, "frame_time_ms": None, "frames_are_time": False}:
        meta["plane"] = plane
    if header is None:
        header = _first_header(volume)
    if header is not None:
        identifying = _identifying_words(header)
        meta["dicom"] = {kw: _plain(header.get(kw)) for kw in _KEPT if header.get(kw) not in (None, "")}
        year = str(header.get("StudyDate") or "")[:4]
        if len(year) == 4 and year.isdigit():
            meta["study_year"] = year
        for kw, key in _DESCRIPTIONS.items():
            text = clean_description(str(header.get(kw) or ""), identifying)
            if text:
                meta[key] = text
    return meta


def _first_header(volume: Volume) -> Optional[object]:
    """One header of the volume's DICOM series, or None (not DICOM, or the files are gone). The
    first file of the folder that belongs to the series: no scan of the whole folder."""
    uid, src = volume.metadata.get("series_uid"), Path(volume.source or "")
    if not uid or not volume.source or not src.exists():
        return None
    import pydicom

    candidates = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    for path in candidates[:5000]:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM or damaged: the next file
            continue
        if str(ds.get("SeriesInstanceUID", "")) == uid:
            return ds
    return None
