"""What a PACS search asks (patient ID or name, a study date range, modality, accession) and what it
finds (a study or a series), shared by the DIMSE and the DICOMweb clients."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Optional

from core.errors import DelineateError

LEVELS = ("study", "series")


def _date(text: str, what: str) -> str:
    text = (text or "").replace("-", "")
    if text and not re.fullmatch(r"\d{8}", text):
        raise DelineateError(f"{what} {text!r} is not a date (YYYYMMDD or YYYY-MM-DD)")
    return text


@dataclass(frozen=True)
class Query:
    """Empty fields match anything; a name may hold * and ? wildcards."""
    patient_id: str = ""
    patient_name: str = ""
    date_from: str = ""
    date_to: str = ""
    modality: str = ""
    accession: str = ""
    study_uid: str = ""

    def __post_init__(self):
        object.__setattr__(self, "date_from", _date(self.date_from, "from date"))
        object.__setattr__(self, "date_to", _date(self.date_to, "to date"))
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise DelineateError(f"the date range {self.date_from}-{self.date_to} is empty (from after to)")

    @property
    def date_range(self) -> str:
        """A DICOM date range (``from-to``, open on either side), or '' for any date."""
        if not (self.date_from or self.date_to):
            return ""
        if self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from}-{self.date_to}"


@dataclass
class Match:
    """One study (series_uid empty) or one series found on a node."""
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    study_description: str = ""
    accession: str = ""
    modality: str = ""  # the series' modality, or the study's modalities joined by '\'
    series_uid: str = ""
    series_number: Optional[int] = None
    series_description: str = ""
    instances: Optional[int] = None

    @property
    def level(self) -> str:
        return "series" if self.series_uid else "study"

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _text(ds, keyword: str) -> str:
    value = ds.get(keyword, "") if ds is not None else ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _int(ds, keyword: str) -> Optional[int]:
    try:
        return int(ds.get(keyword)) if ds is not None and ds.get(keyword) not in (None, "") else None
    except (TypeError, ValueError):
        return None


def match_from(ds, study: Optional[Match] = None) -> Match:
    """A Match from a C-FIND or QIDO-RS answer (a pydicom Dataset); a series answer takes the
    patient and study fields of ``study``, which a strict archive does not repeat at series level."""
    series_uid = _text(ds, "SeriesInstanceUID")
    m = Match(study_uid=_text(ds, "StudyInstanceUID") or (study.study_uid if study else ""),
              patient_id=_text(ds, "PatientID"), patient_name=_text(ds, "PatientName"),
              study_date=_text(ds, "StudyDate"), study_description=_text(ds, "StudyDescription"),
              accession=_text(ds, "AccessionNumber"),
              modality=_text(ds, "Modality") if series_uid else _text(ds, "ModalitiesInStudy"),
              series_uid=series_uid, series_number=_int(ds, "SeriesNumber"),
              series_description=_text(ds, "SeriesDescription"),
              instances=_int(ds, "NumberOfSeriesRelatedInstances" if series_uid else "NumberOfStudyRelatedInstances"))
    if study is not None:
        for name in ("patient_id", "patient_name", "study_date", "study_description", "accession"):
            if not getattr(m, name):
                setattr(m, name, getattr(study, name))
    return m
