"""DICOM Segmentation objects (highdicom): label maps and probability maps out, label maps back in.

Frames are written on the label map's own grid (a ``highdicom.Volume`` placed by our geometry), so
the SEG is exact whether the source was a classic series, a multi-frame object, oblique or
resampled on loading; highdicom derives the per-frame references to the source images from the
positions wherever the planes coincide. Segments are numbered 1..N in label-value order; each
keeps its name, colour (CIELab) and coded category/type.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Sequence

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from core.errors import FormatError
from core.geometry import Geometry
from core.labels import Code, Label, LabelMap, LabelTable, default_color
from core.resample import resample
from formats.atomic import atomic_output

SOFTWARE = "Delineate"
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"  # ~30x smaller SEGs; not every viewer decodes it
EXPLICIT_LE = "1.2.840.10008.1.2.1"
# Type 2 attributes (present, possibly empty) of the Patient, General Study and General Series
# modules that derived objects copy from their source; anonymised sources often drop them
TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "ReferringPhysicianName", "StudyID", "AccessionNumber", "SeriesNumber", "InstanceNumber")
_ABNORMAL_WORDS = ("lesion", "tumor", "tumour", "mass", "nodule", "neoplasm", "metastasis", "cyst")


def with_type2(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` with every missing TYPE2 attribute present and empty, as the standard allows (a copy
    when one was missing: the caller's dataset is left as it was)."""
    missing = [kw for kw in TYPE2 if kw not in ds]
    if not missing:
        return ds
    out = copy.deepcopy(ds)
    for kw in missing:
        setattr(out, kw, None)
    return out


def _sct(name: str):
    key = "".join(w.capitalize() for w in name.replace("grey", "gray").replace("-", " ").split())
    try:
        return getattr(codes.SCT, key)
    except AttributeError:
        return None


def coded_concepts(label: Label) -> tuple[hd.sr.CodedConcept, hd.sr.CodedConcept]:
    """Category and type: the label's own codes, else SNOMED-CT looked up by name, else Tissue."""
    def concept(c: Code) -> hd.sr.CodedConcept:
        return hd.sr.CodedConcept(c.value, c.scheme, c.meaning)

    if label.category and label.type:
        return concept(label.category), concept(label.type)
    abnormal = any(w in label.name.lower() for w in _ABNORMAL_WORDS)
    typ = _sct(label.name) or (codes.SCT.Lesion if abnormal else codes.SCT.Tissue)
    category = codes.SCT.MorphologicallyAbnormalStructure if abnormal else \
        (codes.SCT.AnatomicalStructure if typ != codes.SCT.Tissue else codes.SCT.Tissue)
    return hd.sr.CodedConcept(category.value, category.scheme_designator, category.meaning), \
        hd.sr.CodedConcept(typ.value, typ.scheme_designator, typ.meaning)


def hd_volume(array: np.ndarray, geometry: Geometry, frame_of_reference_uid: str, channels=None) -> hd.Volume:
    """Our [z, y, x] array as a highdicom Volume (axes slice, row, column) in LPS."""
    a = np.eye(4)
    a[:3, :3] = (geometry.direction * geometry.spacing)[:, [2, 1, 0]]
    a[:3, 3] = geometry.origin
    return hd.Volume(array, a, coordinate_system="PATIENT", frame_of_reference_uid=frame_of_reference_uid,
                     channels=channels)


def _geometry_of(vol: hd.Volume) -> Geometry:
    a = np.array(vol.affine, dtype=np.float64)
    a[:3, :3] = a[:3, :3][:, [2, 1, 0]]
    z, y, x = vol.spatial_shape
    return Geometry.from_affine((x, y, z), a)


def _descriptions(table: LabelTable, values: Sequence[int], algorithm: tuple[str, str],
                  algorithm_type: str) -> list[hd.seg.SegmentDescription]:
    ident = hd.AlgorithmIdentificationSequence(name=algorithm[0], version=algorithm[1],
                                               family=codes.DCM.ArtificialIntelligence)
    out = []
    for number, value in enumerate(values, start=1):
        lab = table.get(value)
        category, typ = coded_concepts(lab)
        out.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=lab.name[:64], segmented_property_category=category,
            segmented_property_type=typ, algorithm_type=algorithm_type,
            algorithm_identification=None if algorithm_type == "MANUAL" else ident,
            tracking_uid=hd.UID(), tracking_id=f"{lab.name[:50]} #{value}",
            display_color=hd.color.CIELabColor.from_rgb(*lab.color)))
    return out


def write_seg(labelmap: LabelMap, sources: Sequence[pydicom.Dataset], path: str | Path, *,
              probabilities: Optional[np.ndarray] = None, algorithm: tuple[str, str] = ("Delineate", "1"),
              algorithm_type: str = "SEMIAUTOMATIC", series_description: str = "Delineate segmentation",
              series_number: int = 300, workers: int = 0, label_map_style: bool = True,
              transfer_syntax: str = EXPLICIT_LE) -> Path:
    """Write ``labelmap`` (BINARY) or ``probabilities`` ((C, z, y, x) in [0, 1], one channel per
    label of the table in order: FRACTIONAL) as a SEG referencing ``sources`` (headers suffice)."""
    if not sources:
        raise FormatError(path, "a DICOM SEG needs the source images it segments")
    sources = [with_type2(ds) for ds in sources]
    frame_uid = sources[0].FrameOfReferenceUID
    present = set(labelmap.present_values())  # one pass over the voxels, not one per label
    values = [v for v in labelmap.table.values() if v in present] if probabilities is None \
        else labelmap.table.values()
    if not values:
        raise FormatError(path, "nothing to write: the label map is empty")
    g = labelmap.geometry
    if transfer_syntax == JPEG2000_LOSSLESS and max(g.size[:2]) < 32:
        transfer_syntax = EXPLICIT_LE  # the codec refuses frames under 32 pixels: tiny images go uncompressed
    if probabilities is not None:
        probs = np.clip(np.moveaxis(np.asarray(probabilities, dtype=np.float32), 0, -1), 0, 1)
        pixels = hd_volume(probs, g, frame_uid, {"SegmentNumber": list(range(1, len(values) + 1))})
        seg_type = hd.seg.SegmentationTypeValues.FRACTIONAL
    else:
        lut = np.zeros(max(int(labelmap.array.max()), max(values)) + 1, np.uint8)
        lut[values] = np.arange(1, len(values) + 1)
        numbered = lut[labelmap.array]
        if not label_map_style:  # highdicom's stacked-segments style: one boolean channel per segment
            numbered = np.stack([numbered == n for n in range(1, len(values) + 1)], axis=-1).astype(np.uint8)
            pixels = hd_volume(numbered, g, frame_uid, {"SegmentNumber": list(range(1, len(values) + 1))})
        else:
            pixels = hd_volume(numbered, g, frame_uid)
        seg_type = hd.seg.SegmentationTypeValues.BINARY
    seg = hd.seg.Segmentation(
        source_images=list(sources), pixel_array=pixels, segmentation_type=seg_type,
        segment_descriptions=_descriptions(labelmap.table, values, algorithm, algorithm_type),
        series_instance_uid=hd.UID(), series_number=series_number, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer=SOFTWARE, manufacturer_model_name=SOFTWARE,
        software_versions=algorithm[1] or "1", device_serial_number="0", series_description=series_description,
        content_label="SEGMENTATION", content_description=series_description[:64], workers=workers,
        transfer_syntax_uid=transfer_syntax)
    with atomic_output(path) as tmp:
        seg.save_as(tmp)
    return Path(path)


def read_seg(path: str | Path, reference: Optional[Geometry] = None, fractional: bool = False):
    """A SEG -> LabelMap on ``reference`` (nearest neighbour when the SEG's grid differs) or on its
    own grid; with ``fractional``, also the (C, z, y, x) float32 probabilities."""
    path = Path(path)
    try:
        seg = hd.seg.segread(path)
    except Exception as e:  # highdicom raises several types for non-SEG or malformed objects
        raise FormatError(path, f"not a readable DICOM Segmentation: {e}") from e
    descs = {int(d.segment_number): d for d in seg.SegmentSequence}
    numbers = sorted(descs)
    values = _label_values(descs, numbers)
    table = LabelTable(tuple(_label(v, descs[n]) for n, v in zip(numbers, values)))
    lut = np.array([0] + values)
    if seg.SegmentationType == "FRACTIONAL" or fractional:
        vol = seg.get_volume(combine_segments=False, segment_numbers=numbers, dtype=np.float32)
        geometry = _geometry_of(vol)
        target = reference or geometry
        stack = np.stack([resample(c, geometry, target, order=0 if not fractional else 1)
                          for c in np.moveaxis(vol.array, -1, 0)])  # (C, z, y, x)
        present = np.concatenate([np.zeros((1,) + stack.shape[1:], np.float32), stack], axis=0)
        winner = np.where(present.max(axis=0) >= 0.5, present.argmax(axis=0), 0)
    else:  # binary: straight to a label map (no channel per segment in memory)
        vol = seg.get_volume(combine_segments=True, relabel=False, segment_numbers=numbers, dtype=np.uint16,
                             skip_overlap_checks=True)
        geometry = _geometry_of(vol)
        target = reference or geometry
        winner, stack = resample(vol.array, geometry, target, order=0), None
    labels = lut[winner].astype(np.uint8 if max(values) < 256 else np.uint16)
    labelmap = LabelMap(labels, target, table)
    return (labelmap, stack) if fractional else labelmap


def _label_values(descs: dict, numbers: list[int]) -> list[int]:
    """Label values: those Delineate wrote into the tracking IDs ("name #value"), else the
    segment numbers (other software's SEGs)."""
    import re

    found = [re.search(r"#(\d+)$", str(descs[n].get("TrackingID", ""))) for n in numbers]
    values = [int(m.group(1)) if m else 0 for m in found]
    return values if all(v > 0 for v in values) and len(set(values)) == len(values) else list(numbers)


def _label(number: int, desc) -> Label:
    lab_value = getattr(desc, "RecommendedDisplayCIELabValue", None)
    color = tuple(int(c) for c in hd.color.CIELabColor.from_dicom_value(lab_value).to_rgb()) if lab_value else None
    cat, typ = desc.segmented_property_category, desc.segmented_property_type
    return Label(number, str(desc.segment_label), color or default_color(number),
                 Code(cat.scheme_designator, cat.value, cat.meaning), Code(typ.scheme_designator, typ.value, typ.meaning))
