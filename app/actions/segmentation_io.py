"""Loading a segmentation onto the open image: label maps (NIfTI, NRRD, MetaImage) on the image's
grid, and DICOM Segmentations and RT Structure Sets (a file, or a folder holding one), checked
against the open image before a voxel is read: the Frame of Reference must be the image's, and
the instances they reference must be among the image's when both are known. A SEG meant for
another image is refused with the reason, never resampled onto this one by accident.

An image from a non-DICOM file has no Frame of Reference: a SEG is then accepted only when its
voxels lie on the image's grid, an RTSTRUCT only when its contours lie on the image's slices."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import DelineateError, FormatError
from core.geometry import Geometry
from core.labels import LabelMap
from core.progress import check, no_progress
from core.volume import Volume

# what File -> Load segmentation offers (Qt file-dialog filter syntax)
FILE_FILTER = ("Segmentations (*.nii *.nii.gz *.nrrd *.seg.nrrd *.nhdr *.mha *.mhd *.dcm);;"
               "DICOM SEG or RTSTRUCT (*.dcm);;All files (*)")
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
_KINDS = {"SEG": "seg", "RTSTRUCT": "rtstruct"}
_FOLDER_LIMIT = 5000  # files looked at in a folder


@dataclass
class _Reference:
    """What a DICOM object or image says about where it lies."""
    frames: set = field(default_factory=set)  # Frame of Reference UIDs
    instances: set = field(default_factory=set)  # SOP Instance UIDs (referenced, or the image's own)
    series: set = field(default_factory=set)  # Series Instance UIDs (referenced, or the image's own)


def load_segmentation(path, volume: Volume, progress=None, cancel=None, isolate: Optional[bool] = None) -> LabelMap:
    """The segmentation in ``path`` as a LabelMap on ``volume``'s grid. Raises a DelineateError
    naming the file when it cannot be read or does not belong to ``volume``. ``isolate``: decode in
    a child process (formats.sandbox; default unless $DELINEATE_DECODE_IN_PROCESS is set)."""
    from formats.io import kind_of, read_labelmap

    progress = progress or no_progress
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "does not exist")
    if kind_of(path) != "dicom":
        progress(0.0, "reading the label map")
        lm = read_labelmap(path, volume, isolate)
        progress(1.0, "label map read")
        return lm
    progress(0.0, "looking for a DICOM SEG or RTSTRUCT")
    image = _image_reference(volume)
    file, header = _segmentation_object(path, image, cancel)
    kind = _KINDS[str(header.get("Modality", ""))]
    _check_match(file, header, kind, image, volume)
    check(cancel)
    progress(0.2, f"reading the {'segmentation' if kind == 'seg' else 'structure set'}")
    reference = None if kind == "seg" else volume.geometry
    if _isolated(isolate):
        from formats import sandbox

        lm = sandbox.call(file, _read_here, str(Path(file).absolute()), kind, reference, cancel=cancel,
                          preload=(f"formats.dicom.{kind}",))
    else:
        lm = _read_here(str(file), kind, reference)
    if kind == "seg":
        lm = _onto(file, lm, volume, image)
    if not lm.array.any():
        raise FormatError(file, "no segmented voxel falls inside the open image")
    progress(1.0, "segmentation read")
    return lm


def _isolated(isolate: Optional[bool]) -> bool:
    from formats.sandbox import in_process

    return (not in_process()) if isolate is None else isolate


def _read_here(path: str, kind: str, reference: Optional[Geometry], progress=no_progress) -> LabelMap:
    """Decode a SEG (on its own grid) or an RTSTRUCT (rasterised on ``reference``); third-party
    errors become a FormatError naming the file."""
    try:
        if kind == "seg":
            from formats.dicom.seg import read_seg

            return read_seg(path)
        from formats.dicom.rtstruct import read_rtstruct

        return read_rtstruct(path, reference)
    except DelineateError:
        raise
    except MemoryError:
        raise FormatError(path, "needs more memory than is available") from None
    except Exception as exc:  # noqa: BLE001 - a reader library's own error, reported against the file
        raise FormatError(path, f"cannot be read ({type(exc).__name__}: {exc})") from None


# -- which file, and does it belong to the image -------------------------------------------------------
def _header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - not DICOM or damaged
        raise FormatError(path, f"not a readable DICOM file ({type(exc).__name__}: {exc})") from None


def _is_segmentation(ds) -> bool:
    return str(ds.get("Modality", "")) in _KINDS or str(ds.get("SOPClassUID", "")) in (SEG_CLASS, RTSTRUCT_CLASS)


def _segmentation_object(path: Path, image: Optional[_Reference], cancel):
    """(file, header) of the SEG or RTSTRUCT ``path`` is or holds; in a folder holding several, the
    one on the image's Frame of Reference when only one is."""
    import pydicom

    if path.is_file():
        ds = _header(path)
        if not _is_segmentation(ds):
            what = f"a DICOM {ds.get('Modality')} object" if ds.get("Modality") else "a DICOM object"
            raise FormatError(path, f"is {what}, not a segmentation (DICOM SEG or RTSTRUCT)")
        if str(ds.get("Modality", "")) not in _KINDS:  # the class says what it is; Modality must agree
            raise FormatError(path, f"Modality is {ds.get('Modality')!r}, not SEG or RTSTRUCT as its class says")
        return path, ds
    found = []
    for n, f in enumerate(sorted(p for p in path.rglob("*") if p.is_file())):
        if n >= _FOLDER_LIMIT:
            break
        check(cancel)
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
        except Exception:  # noqa: BLE001 - not DICOM: the next file
            continue
        if str(ds.get("Modality", "")) in _KINDS:
            found.append(f)
    if not found:
        raise FormatError(path, "holds no DICOM SEG or RTSTRUCT")
    headers = [(f, _header(f)) for f in found]
    if len(headers) > 1 and image is not None and image.frames:
        headers = [(f, ds) for f, ds in headers if _object_reference(ds).frames & image.frames] or headers
    if len(headers) > 1:
        names = ", ".join(f.name for f, _ in headers[:3]) + (" …" if len(headers) > 3 else "")
        raise FormatError(path, f"holds {len(headers)} segmentation objects ({names}): choose one file")
    return headers[0]


def _image_reference(volume: Volume) -> Optional[_Reference]:
    """The open image's Frame of Reference, instances and series, or None when it did not come
    from DICOM (or its files are gone)."""
    if not volume.metadata.get("series_uid"):
        return None
    from formats.dicom.sources import source_datasets

    try:
        headers = source_datasets(volume)
    except (DelineateError, OSError):
        return None
    ref = _Reference(series={str(volume.metadata["series_uid"])})
    for ds in headers:
        if ds.get("FrameOfReferenceUID"):
            ref.frames.add(str(ds.FrameOfReferenceUID))
        if ds.get("SOPInstanceUID"):
            ref.instances.add(str(ds.SOPInstanceUID))
    return ref


def _items(ds, *path):
    """Every item reached by following the sequence keywords ``path`` from ``ds``."""
    items = [ds]
    for kw in path:
        items = [item for parent in items for item in (parent.get(kw) or [])]
    return items


def _object_reference(ds) -> _Reference:
    ref = _Reference()
    if ds.get("FrameOfReferenceUID"):
        ref.frames.add(str(ds.FrameOfReferenceUID))
    if str(ds.get("Modality", "")) == "SEG":
        series = _items(ds, "ReferencedSeriesSequence")
        instances = [i for s in series for i in (s.get("ReferencedInstanceSequence") or [])]
        for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            instances += _items(ds, group, "DerivationImageSequence", "SourceImageSequence")
    else:
        frames = _items(ds, "ReferencedFrameOfReferenceSequence")
        ref.frames.update(str(f.FrameOfReferenceUID) for f in frames if f.get("FrameOfReferenceUID"))
        ref.frames.update(str(r.ReferencedFrameOfReferenceUID) for r in _items(ds, "StructureSetROISequence")
                          if r.get("ReferencedFrameOfReferenceUID"))
        series = [s for f in frames for s in _items(f, "RTReferencedStudySequence", "RTReferencedSeriesSequence")]
        instances = [i for s in series for i in (s.get("ContourImageSequence") or [])]
        instances += _items(ds, "ROIContourSequence", "ContourSequence", "ContourImageSequence")
    ref.series.update(str(s.SeriesInstanceUID) for s in series if s.get("SeriesInstanceUID"))
    ref.instances.update(str(i.ReferencedSOPInstanceUID) for i in instances if i.get("ReferencedSOPInstanceUID"))
    return ref


def _check_match(file: Path, ds, kind: str, image: Optional[_Reference], volume: Volume) -> None:
    obj = _object_reference(ds)
    what = "segmentation" if kind == "seg" else "structure set"
    if image is None:
        return  # not a DICOM image: the grid (SEG) or the slice planes (RTSTRUCT) decide, when read
    if obj.frames and image.frames and not obj.frames & image.frames:
        raise FormatError(file, f"this {what} refers to Frame of Reference {_one(obj.frames)}; the open image "
                                f"is on {_one(image.frames)}: it belongs to another scan")
    if obj.instances and image.instances and not obj.instances & image.instances:
        raise FormatError(file, f"this {what} refers to {len(obj.instances)} image(s) of series "
                                f"{_one(obj.series) or 'unknown'}, none of which is in the open image "
                                f"(series {_one(image.series)})")


def _one(uids: set) -> str:
    return ", ".join(sorted(uids)[:2]) + (" …" if len(uids) > 2 else "")


def _onto(file: Path, lm: LabelMap, volume: Volume, image: Optional[_Reference]) -> LabelMap:
    """The SEG's label map on the image's grid. Without a Frame of Reference to vouch for it, only
    a SEG whose voxels lie on the image's grid is taken (nothing is interpolated)."""
    from core.resample import resample

    target = volume.geometry
    if lm.geometry.same_grid(target, tol=1e-4):
        return LabelMap(lm.array, target, lm.table)
    if image is None and not _on_lattice(lm.geometry, target):
        raise FormatError(file, "its voxels are not on the open image's grid, and the image (not DICOM) has no "
                                "Frame of Reference to place it by: open the DICOM series it was made on")
    return LabelMap(resample(lm.array, lm.geometry, target, order=0), target, lm.table)


def _on_lattice(g: Geometry, target: Geometry, tol: float = 0.01) -> bool:
    """Whether ``g``'s voxel centres are voxel centres of ``target``: its index axes are the
    target's, possibly reversed or swapped (a SEG's frames may run the other way), offset by whole
    voxels (a SEG may hold only the frames that have segments)."""
    m = np.linalg.inv(target.affine) @ g.affine  # g's index -> target's index
    used = [a for a in range(3) if g.size[a] > 1]  # a single frame's slice spacing says nothing
    steps = m[:3, used]
    whole = np.round(steps)
    unit_axes = np.all(np.abs(whole).sum(axis=0) == 1) and len({int(np.argmax(np.abs(c))) for c in whole.T}) == len(used)
    return bool(unit_axes and np.all(np.abs(steps - whole) < 1e-3)
                and np.all(np.abs(m[:3, 3] - np.round(m[:3, 3])) < tol))
