"""De-identification on export: DICOM PS3.15 Annex E Basic Application Level Confidentiality
Profile, as implemented and kept up to date by KitwareMedical's dicom-anonymizer (its tables are
generated from the standard; we use the 2026c edition). One Deidentifier per export maps each UID
to the same new UID everywhere, so a SEG or RTSTRUCT still references its de-identified source.

Not covered (as the basic profile does not cover them): identifying text burned into the pixels
and faces recoverable from 3D renderings.
"""
from __future__ import annotations

import copy

import pydicom
from dicomanonymizer import simpledicomanonymizer as _sda

TABLES = "dicomfields_2026c"
_LIBRARY_DUMMY_DATE = "00010101"  # what dicom-anonymizer writes for a dummy date
DUMMY_DATE = "19000101"  # year 1 is not a valid DA for validators (dciodvfy); this one is
METHOD = f"PS3.15 E basic profile (dicom-anonymizer {TABLES[-5:]})"


class Deidentifier:
    def __init__(self) -> None:
        self.uids: dict[str, str] = {}

    def __call__(self, ds: pydicom.Dataset) -> pydicom.Dataset:
        """A de-identified copy of ``ds`` (the original is left untouched)."""
        out = copy.deepcopy(ds)
        saved, _sda.dictionary = _sda.dictionary, self.uids  # the library keeps its UID map in a module global
        try:
            _sda.anonymize_dataset(out, delete_private_tags=True,
                                   base_rules_gen=lambda: _sda.initialize_actions(TABLES))
        finally:
            _sda.dictionary = saved
        for elem in out.iterall():
            if elem.VR in ("DA", "DT") and isinstance(elem.value, str) and elem.value.startswith(_LIBRARY_DUMMY_DATE):
                elem.value = DUMMY_DATE + elem.value[len(_LIBRARY_DUMMY_DATE):]
        meta = getattr(out, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in out:
            meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        out.PatientIdentityRemoved = "YES"
        out.DeidentificationMethod = METHOD
        code = pydicom.Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        out.DeidentificationMethodCodeSequence = pydicom.Sequence([code])
        return out
