"""The review report as a DICOM Encapsulated PDF (PS3.3 A.45.1), in the study of the image it
reviews, so an archive files it beside that image. (A DICOM writer; it lives here because sending
is its only use so far: formats/dicom is its home if export ever writes it.)"""
from __future__ import annotations

import datetime
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import EncapsulatedPDFStorage, generate_uid

from core.errors import FormatError
from formats.atomic import atomic_output
from formats.dicom.write import new_dataset

_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientIdentityRemoved",
                  "DeidentificationMethod", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID",
                  "AccessionNumber", "ReferringPhysicianName", "StudyDescription")
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
          "AccessionNumber", "ReferringPhysicianName")


def encapsulated_pdf(pdf: str | Path, sources: list[Dataset], out: str | Path,
                     title: str = "Delineate review report") -> Path:
    """Write ``pdf`` as an Encapsulated PDF instance in the study of ``sources`` (the headers of the
    reviewed image's instances, which it lists as its source) to ``out``, atomically."""
    pdf, out = Path(pdf), Path(out)
    data = pdf.read_bytes()
    if not data.startswith(b"%PDF"):
        raise FormatError(pdf, "not a PDF file")
    if not sources:
        raise FormatError(pdf, "a report is filed in the study of a DICOM image: no source instances given")
    first = sources[0]
    ds = new_dataset(EncapsulatedPDFStorage)
    for keyword in _PATIENT_STUDY:
        if keyword in first:
            setattr(ds, keyword, first.data_element(keyword).value)
    for keyword in _TYPE2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    now = datetime.datetime.now()
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 9001, 1
    ds.Modality, ds.ConversionType, ds.Manufacturer = "DOC", "WSD", "Delineate"
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.SeriesDescription = ds.DocumentTitle = title
    # the report prints the patient's name unless it was exported de-identified
    ds.BurnedInAnnotation = "NO" if str(first.get("PatientIdentityRemoved", "")) == "YES" else "YES"
    ds.ConceptNameCodeSequence = Sequence()
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(data)
    ds.EncapsulatedDocument = data + (b"\0" if len(data) % 2 else b"")
    refs = []
    for src in sources:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = src.SOPClassUID, src.SOPInstanceUID
        refs.append(item)
    ds.SourceInstanceSequence = Sequence(refs)
    with atomic_output(out) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return out
