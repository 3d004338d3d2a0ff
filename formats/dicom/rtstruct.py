"""RT Structure Sets: label maps out as planar contours on the source image planes, and back.

highdicom has no RTSTRUCT writer, and rt-utils needs OpenCV (whose Qt plugins clash with ours),
so the object is built with pydicom from the standard's modules. Contours are marching-squares
iso-lines at 0.5 of each slice's mask (contourpy, matplotlib's engine): they run through the voxel
edges' midpoints, enclosing exactly the voxel centres inside. Reading rasterises each contour by
voxel centre, holes by the even-odd rule (nested contours XOR), which is how planning systems
read them. Round trip: exact on our own contours (tested); foreign contours are rasterised at the
voxel-centre rule, i.e. within half a voxel of the drawn line.
"""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import RTStructureSetStorage, generate_uid

from core.errors import FormatError
from core.geometry import Geometry
from core.labels import Label, LabelMap, LabelTable, default_color
from core.progress import CancelToken, ProgressFn, check, no_progress
from formats.atomic import atomic_output
from formats.dicom.sources import plane_references
from formats.dicom.write import _ds, new_dataset

_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
           "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription")
_STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management, what TPS expect here


def slice_contours(mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed contours (n, 2) as (column, row) indices around the True pixels of one slice."""
    import contourpy

    padded = np.pad(mask2d.astype(np.float64), 1)
    gen = contourpy.contour_generator(z=padded, name="serial", line_type="Separate", corner_mask=True)
    out = []
    for line in gen.lines(0.5):
        pts = np.asarray(line, dtype=np.float64) - 1.0
        if np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        out.append(_drop_collinear(pts))
    return [p for p in out if len(p) >= 3]


def _drop_collinear(pts: np.ndarray) -> np.ndarray:
    prev, nxt = np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0)
    cross = (pts[:, 0] - prev[:, 0]) * (nxt[:, 1] - pts[:, 1]) - (pts[:, 1] - prev[:, 1]) * (nxt[:, 0] - pts[:, 0])
    keep = np.abs(cross) > 1e-9
    return pts[keep] if keep.sum() >= 3 else pts


def fill_contours(contours: Sequence[np.ndarray], shape_yx: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of (column, row) polygons: pixels whose centre lies inside an odd number."""
    from matplotlib.path import Path as MplPath

    out = np.zeros(shape_yx, dtype=bool)
    for poly in contours:
        lo = np.maximum(np.floor(poly.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(poly.max(axis=0)).astype(int), np.array(shape_yx[::-1]) - 1)
        if np.any(hi < lo):
            continue
        cols, rows = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
        inside = MplPath(poly).contains_points(np.column_stack([cols.ravel(), rows.ravel()]), radius=0.0)
        out[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] ^= inside.reshape(cols.shape)
    return out


def _image_reference(ref: tuple) -> Dataset:
    """A Contour Image Sequence item: (SOP class, SOP instance, frame number or None)."""
    img = Dataset()
    img.ReferencedSOPClassUID, img.ReferencedSOPInstanceUID = ref[0], ref[1]
    if ref[2] is not None:
        img.ReferencedFrameNumber = ref[2]
    return img


def _roi_contours(mask: np.ndarray, geometry: Geometry, refs: dict, k_range) -> list[Dataset]:
    items = []
    for k in k_range:
        if not mask[k].any():
            continue
        for poly in slice_contours(mask[k]):
            ijk = np.column_stack([poly, np.full(len(poly), float(k))])
            world = geometry.index_to_world(ijk)
            c = Dataset()
            if k in refs:
                c.ContourImageSequence = DicomSequence([_image_reference(refs[k])])
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(world)
            c.ContourData = [_ds(float(v)) for v in world.ravel()]
            items.append(c)
    return items


def write_rtstruct(labelmap: LabelMap, sources: Sequence[pydicom.Dataset], path: str | Path, *,
                   label: str = "Delineate", algorithm: str = "SEMIAUTOMATIC", reviewer: str = "",
                   progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> Path:
    if not sources:
        raise FormatError(path, "an RT Structure Set needs the source images it outlines")
    src = sources[0]
    g = labelmap.geometry
    refs = plane_references(list(sources), g)
    now = datetime.datetime.now()
    ds = new_dataset(RTStructureSetStorage)
    ds.SpecificCharacterSet = "ISO_IR 192"
    for kw in _COPIED:
        setattr(ds, kw, src.get(kw, ""))
    ds.FrameOfReferenceUID = src.FrameOfReferenceUID
    ds.PositionReferenceIndicator = src.get("PositionReferenceIndicator", "")
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 301
    ds.SeriesDescription = f"{label} structures"[:64]
    ds.OperatorsName = reviewer
    ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = "Delineate", "Delineate", "1"
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label[:16]
    ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.StructureSetDate, ds.StructureSetTime

    images = [_image_reference(refs[k]) for k in sorted(refs)]
    series = Dataset()
    series.SeriesInstanceUID = src.SeriesInstanceUID
    series.ContourImageSequence = DicomSequence(images)
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = _STUDY_COMPONENT, src.StudyInstanceUID
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = src.FrameOfReferenceUID
    frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])

    rois, contours, observations = [], [], []
    present = set(labelmap.present_values())
    labels = [lab for lab in labelmap.table if lab.value in present]
    from scipy import ndimage

    boxes = ndimage.find_objects(labelmap.array)
    for n, lab in enumerate(labels, start=1):
        check(cancel)
        box = boxes[lab.value - 1]
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = n, src.FrameOfReferenceUID
        roi.ROIName, roi.ROIGenerationAlgorithm = lab.name[:64], algorithm
        rois.append(roi)
        rc = Dataset()
        rc.ROIDisplayColor = list(lab.color)
        rc.ReferencedROINumber = n
        rc.ContourSequence = DicomSequence(_roi_contours(labelmap.array == lab.value, g, refs,
                                                         range(box[0].start, box[0].stop)))
        contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = n, n
        obs.RTROIInterpretedType, obs.ROIInterpreter = "ORGAN", reviewer
        observations.append(obs)
        progress(n / len(labels), f"contours of {lab.name}")
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    with atomic_output(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)


def read_rtstruct(path: str | Path, reference: Geometry, tolerance_slices: float = 0.1) -> LabelMap:
    """Rasterise every ROI's closed planar contours onto ``reference`` (later ROIs win overlaps)."""
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as e:
        raise FormatError(path, f"not a readable DICOM file: {e}") from e
    if ds.get("Modality") != "RTSTRUCT" or "ROIContourSequence" not in ds:
        raise FormatError(path, "not an RT Structure Set (no ROI contours)")
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.get("StructureSetROISequence", [])}
    out = np.zeros(reference.shape_zyx, np.uint8)
    labels = []
    for value, rc in enumerate(ds.ROIContourSequence, start=1):
        number = int(rc.ReferencedROINumber)
        color = tuple(int(c) for c in rc.get("ROIDisplayColor", default_color(value)))
        labels.append(Label(value, names.get(number, f"ROI {number}"), color))
        per_slice: dict[int, list[np.ndarray]] = {}
        for c in rc.get("ContourSequence", []):
            if c.get("ContourGeometricType", "CLOSED_PLANAR") != "CLOSED_PLANAR":
                continue
            ijk = reference.world_to_index(np.asarray(c.ContourData, dtype=np.float64).reshape(-1, 3))
            k = int(round(float(np.median(ijk[:, 2]))))
            if np.abs(ijk[:, 2] - k).max() > tolerance_slices or not 0 <= k < reference.size[2]:
                raise FormatError(path, f"ROI {names.get(number, number)!r} has a contour off the image's "
                                        f"slice planes (slice index {ijk[:, 2].mean():.2f}): not on this image")
            per_slice.setdefault(k, []).append(ijk[:, :2])
        for k, polys in per_slice.items():
            out[k][fill_contours(polys, out.shape[1:])] = value
    return LabelMap(out, reference, LabelTable(tuple(labels)))
