"""A folder (or a few files) of DICOM -> the series and stacks in it, from headers only."""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from core.errors import Cancelled, FormatError
from core.progress import CancelToken, ProgressFn, check, no_progress
from formats.dicom import quick_header, temporal, validate
from formats.dicom.frames import FrameRef, frames_of, read_header
from formats.dicom.validate import PixelExtent

_NOT_IMAGES = {"RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "KO", "PR", "REG", "RAW", "SEG", "DOC", "FID", "RWV"}


@dataclass
class SeriesInfo:
    key: str
    series_uid: str
    modality: str
    patient_name: str
    patient_id: str
    study_description: str
    series_description: str
    series_number: str
    frames: list[FrameRef]
    header: pydicom.Dataset = field(repr=False)
    note: str = ""
    #: (file, reason) for each file of the scan that looked like DICOM but could not be used
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: a 3D series over time (formats.dicom.temporal): its frames per time point, else None
    time_points: Optional[list[list[FrameRef]]] = None
    times_s: Optional[list[float]] = None  # each time point after the first, when the headers say
    #: said when it loads (time points left out); a problem refuses it then
    warnings: list[str] = field(default_factory=list)
    problem: str = ""

    @property
    def files(self) -> list[Path]:
        return sorted({f.path for f in self.frames})

    @property
    def n_images(self) -> int:
        return len(self.frames)

    @property
    def has_geometry(self) -> bool:
        return all(f.position is not None and f.orientation is not None for f in self.frames)

    def summary(self) -> dict:
        h = self.header
        return {
            "key": self.key, "modality": self.modality, "patient": self.patient_name,
            "study": self.study_description, "series": self.series_description,
            "number": self.series_number, "images": self.n_images, "files": len(self.files),
            "size": f"{h.get('Columns', '?')}x{h.get('Rows', '?')}", "note": self.note,
        }


def _iter_files(folder: Path) -> Iterable[Path]:
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            yield Path(root) / name


def check_dicomdir(dicomdir: Path) -> None:
    """Refuse a DICOMDIR that references files outside its own folder."""
    try:
        ds = pydicom.dcmread(dicomdir, stop_before_pixels=True)
    except Exception as exc:
        raise FormatError(dicomdir, f"DICOMDIR is unreadable ({exc})") from None
    base = dicomdir.parent.resolve()
    for rec in ds.get("DirectoryRecordSequence", []):
        ref = rec.get("ReferencedFileID")
        if ref is None:
            continue
        parts = [str(p) for p in (ref if isinstance(ref, (list, pydicom.multival.MultiValue)) else [ref])]
        target = base.joinpath(*parts).resolve()
        if any(p in ("..", "") or os.path.isabs(p) for p in parts) or base not in target.parents:
            raise FormatError(dicomdir, f"DICOMDIR references {'/'.join(parts)}, outside its folder; refused")


def _text(ds, kw) -> str:
    return str(ds.get(kw, "") or "").strip()


def _group_key(f: FrameRef) -> tuple:
    ori = tuple(np.round(f.orientation, 3)) if f.orientation is not None else None
    sp = tuple(np.round(f.pixel_spacing, 4)) if f.pixel_spacing else None
    return (ori, f.rows, f.columns, sp)


def _apart_from_time(f: FrameRef) -> tuple:
    """What separates stacks other than time: the echo (and an enhanced file's StackID)."""
    key = f.stack_key
    if len(key) != 3:
        return key
    return (key[1],) if f.frame is None else (key[0], key[2])


def _split_duplicates(frames: list[FrameRef]) -> list:
    """Frames sharing positions are several stacks (echoes, stacks), each of which may be a 3D
    series over time (a temporal.Dynamic); what none of their headers separates stays one stack
    (refused on loading)."""
    pos = [tuple(np.round(f.position, 2)) for f in frames]
    if len(set(pos)) == len(pos):
        return [frames]
    apart = defaultdict(list)
    for f in frames:
        apart[_apart_from_time(f)].append(f)
    out = []
    for k in sorted(apart):
        group = apart[k]
        dynamic = temporal.split_time(group)
        if dynamic is not None:
            out.append(dynamic)
            continue
        by_key = defaultdict(list)
        for f in group:
            by_key[f.stack_key].append(f)
        out.extend(by_key[k] for k in sorted(by_key))
    return out


_PLANES = {0: "sagittal", 1: "coronal", 2: "axial"}


def _plane_name(orientation: Optional[np.ndarray]) -> str:
    if orientation is None:
        return ""
    normal = np.cross(orientation[:3], orientation[3:])
    return _PLANES[int(np.argmax(np.abs(normal)))]


def _stacks(frames: list[FrameRef]) -> list[list[FrameRef]]:
    spatial = [f for f in frames if f.position is not None and f.orientation is not None]
    flat = [f for f in frames if f not in spatial] if len(spatial) != len(frames) else []
    groups = defaultdict(list)
    for f in spatial:
        groups[_group_key(f)].append(f)
    out = []
    for g in groups.values():
        out.extend(_split_duplicates(g))
    # Images without patient geometry (US, secondary capture...) stand alone, one per file.
    by_file = defaultdict(list)
    for f in flat:
        by_file[f.path].append(f)
    out.extend(by_file.values())
    return out


_TEXTS = ("Modality", "PatientName", "PatientID", "StudyDescription", "SeriesDescription", "SeriesNumber")


def _scan_one(path: Path, strict: bool):
    """(series key, frames, header, its texts) of one file; None for a file that is not a DICOM
    image (skipped quietly in a folder); FormatError with the reason for a DICOM file that is unusable."""
    try:
        ds, loc, extent = read_header(path)
    except (InvalidDicomError, EOFError) as exc:
        if strict:
            raise FormatError(path, f"not a readable DICOM file ({_reason(path, exc)})") from None
        return None  # not DICOM: notes, thumbnails... in a folder
    except (FormatError, Cancelled):
        raise
    except Exception as exc:  # pydicom and zlib raise many types on a corrupt header
        raise FormatError(path, f"DICOM header is unreadable ({_reason(path, exc)})") from None
    return _describe(path, ds, loc, extent, strict)


def _describe(path: Path, ds, loc, extent, strict: bool):
    try:
        texts = {kw: _text(ds, kw) for kw in _TEXTS}  # pydicom converts values lazily: a corrupt one raises here
        modality = texts["Modality"].upper()
        if "Rows" not in ds or "Columns" not in ds or modality in _NOT_IMAGES:
            if strict:
                sop = getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID") or ds.get("SOPClassUID")
                raise FormatError(path, f"holds no image pixel data ({modality or 'unknown modality'}"
                                        f"{', ' + sop.name if sop is not None else ''})"
                                        f"{_ends_early(path, ds) or '; nothing to display'}")
            return None
        frames = frames_of(path, ds, loc, extent)
        uid = str(ds.get("SeriesInstanceUID", "") or path)
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(path, f"DICOM header is malformed ({type(exc).__name__}: {exc})") from None
    key = (uid,) if frames[0].frame is None else (uid, str(path))
    return key, frames, ds, texts


def scan_files(paths: Iterable[Path], progress: ProgressFn = no_progress,
               cancel: Optional[CancelToken] = None, strict: bool = False, quick: bool = True) -> list[SeriesInfo]:
    """Headers of ``paths`` -> series/stacks. Non-DICOM files are ignored and unusable DICOM files
    skipped with their reason (``SeriesInfo.skipped``), or refused if strict. ``quick``: files after
    the first of their series are read by quick_header where they allow it (the same frames, faster)."""
    paths = list(paths)
    shared: dict = {}
    by_series: dict[tuple, list[FrameRef]] = defaultdict(list)
    headers: dict[tuple, tuple[pydicom.Dataset, dict]] = {}
    skipped: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        check(cancel)
        if i % 16 == 0:
            progress(i / max(1, len(paths)), f"reading headers {i}/{len(paths)}")
        if path.name.upper() == "DICOMDIR":
            check_dicomdir(path)
            continue
        try:
            found = None if strict or not quick else _scan_quick(path, shared, headers)
            found = found or _scan_one(path, strict)
        except FormatError as exc:
            if strict:
                raise
            skipped.append((str(path), exc.problem))
            continue
        if found is not None:
            key, frames, ds, texts = found
            by_series[key].extend(frames)
            headers.setdefault(key, (ds, texts))
    progress(1.0, "headers read")
    out = []
    for key, frames in by_series.items():
        ds, texts = headers[key]
        stacks = _stacks(frames)
        for n, stack in enumerate(stacks, start=1):
            dynamic = stack if isinstance(stack, temporal.Dynamic) else None
            if dynamic is not None:
                stack = dynamic.frames or dynamic.group
            note = ""
            if len(stacks) > 1:
                note = f"stack {n} of {len(stacks)}"
                plane = _plane_name(stack[0].orientation)
                if plane:
                    note += f" ({plane})"
            if dynamic is not None:
                note = ", ".join(x for x in (note, _time_note(dynamic, ds)) if x)
            out.append(SeriesInfo(
                key=f"{key[0]}#{n}" if len(stacks) > 1 else key[-1], series_uid=key[0],
                modality=texts["Modality"].upper() or "OT", patient_name=texts["PatientName"],
                patient_id=texts["PatientID"], study_description=texts["StudyDescription"],
                series_description=texts["SeriesDescription"], series_number=texts["SeriesNumber"],
                frames=stack, header=ds, note=note, skipped=skipped,
                time_points=dynamic.time_points if dynamic else None,
                times_s=dynamic.times_s if dynamic else None,
                warnings=list(dynamic.warnings) if dynamic else [], problem=dynamic.problem if dynamic else ""))
    out.sort(key=lambda s: (s.study_description, _num(s.series_number), s.key))
    if not out and skipped:
        raise FormatError(None, "no usable DICOM image: " + "; ".join(f"{p}: {why}" for p, why in skipped[:5])
                          + (f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""))
    return out


def _scan_quick(path: Path, shared: dict, known: dict) -> Optional[tuple]:
    """Like _scan_one for a file whose quick header shares its key with a file already described,
    in a series already found; None where the full reader must judge the file."""
    quick = quick_header.read(path)
    if quick is None:
        return None
    found = shared.get(quick.key, _UNKNOWN)
    if found is _UNKNOWN:
        # judged without this file's position, instance number and pixel length, checked below per file
        extent = PixelExtent(quick.extent.declared, 1 << 62)
        try:
            found = _describe(path, quick.dataset(), quick.location, extent, False)
        except Exception:  # its message comes from the full reader
            found = None
        if found is not None and (len(found[1]) != 1 or found[1][0].frame is not None):
            found = None
        shared[quick.key] = found
    if found is None or found[0] not in known:
        return None  # the first file of a series gives it its full header
    key, (ref,), ds, texts = found
    position, instance = quick.position(), quick.instance()
    if position is None or instance is None:
        return None
    try:
        validate.check_extent(path, ref.format, quick.extent, encapsulated=False)
    except FormatError:
        return None
    trigger, acquired, content = quick.time_texts()
    times = (ref.temporal or temporal.Temporal())._replace(
        trigger_ms=temporal.number(trigger), acquisition_s=temporal.seconds(acquired), content_s=temporal.seconds(content))
    ref = replace(ref, path=path, position=np.asarray(position, dtype=np.float64) if position else None,
                  instance=instance, location=quick.location, temporal=times)
    return key, [ref], ds, texts


_UNKNOWN = object()


def _time_note(dynamic: temporal.Dynamic, ds) -> str:
    """'3D + time: 20 time points x 64 slices (TemporalPositionIdentifier)' for the series list."""
    if dynamic.problem:
        return f"3D + time, unusable: {dynamic.problem}"
    tp = dynamic.time_points
    note = f"3D + time: {len(tp)} time points x {len(tp[0])} slices ({dynamic.attribute})"
    declared = temporal.number(ds.get("NumberOfTemporalPositions")) if "NumberOfTemporalPositions" in ds else None
    if declared and int(declared) > len(tp) and dynamic.attribute == temporal.ATTRIBUTES[0]:
        warning = f"the header declares {int(declared)} time points (NumberOfTemporalPositions); {len(tp)} are here"
        dynamic.warnings.append(warning)
        note += f"; {warning}"
    return note


def _reason(path: Path, exc: Exception) -> str:
    """One line for a header pydicom could not read: how far the file goes, not pydicom's advice."""
    size = path.stat().st_size if path.exists() else 0
    if size < 132:
        return f"the file is only {size} bytes, shorter than a DICOM preamble and header"
    text = str(exc).split(". Use force=True")[0].strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _ends_early(path: Path, ds) -> str:
    """Why an image instance lacks its image attributes: the file stops short."""
    sop = getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID") or ds.get("SOPClassUID")
    if sop is not None and "Image" in getattr(sop, "name", "") and "Rows" not in ds:
        return (f"; the file ends after {path.stat().st_size} bytes without its image attributes "
                f"(Rows, Columns): truncated or header-only")
    return ""


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def list_series(folder: str | Path, progress: ProgressFn = no_progress,
                cancel: Optional[CancelToken] = None, quick: bool = True) -> list[SeriesInfo]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(folder, "is not a folder")
    try:
        series = scan_files(_iter_files(folder), progress, cancel, quick=quick)
    except FormatError as exc:
        if exc.path is not None:
            raise
        raise FormatError(folder, exc.problem) from None
    if not series:
        raise FormatError(folder, "no DICOM images found in this folder")
    return series


def skipped_note(series: list[SeriesInfo]) -> list[str]:
    """One warning line per file the scan skipped, with its reason."""
    skipped = series[0].skipped if series else []
    return [f"skipped {Path(p).name}: {why}" for p, why in skipped]
