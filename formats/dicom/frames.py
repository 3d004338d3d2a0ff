"""One DICOM frame's header facts, read once while scanning; pixels are fetched later."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core.errors import FormatError, TooLargeError
from core.geometry import MIN_SPACING_MM
from formats.dicom import temporal, validate
from formats.dicom.deflated import inflate, is_deflated
from formats.dicom.pixel_format import PixelFormat
from formats.dicom.validate import POSITION_LIMIT, SPACING_LIMIT, PixelExtent

_NATIVE_LE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
_PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}
_MAX_ITEMS = 1 << 20  # fragments counted before giving up (more than any real multi-frame file)
#: more frames than any real acquisition; keeps a lying header from building millions of FrameRefs
MAX_FRAMES = 100_000


@dataclass
class PixelLocation:
    """Where uncompressed little-endian pixel data starts in a file (for a direct read)."""

    offset: int
    length: int


@dataclass
class FrameRef:
    path: Path
    frame: Optional[int]  # None: single-frame file
    rows: int
    columns: int
    position: Optional[np.ndarray] = None  # ImagePositionPatient (LPS mm)
    orientation: Optional[np.ndarray] = None  # ImageOrientationPatient (6 cosines)
    pixel_spacing: Optional[tuple[float, float]] = None  # (row spacing = y, column spacing = x)
    slope: float = 1.0
    intercept: float = 0.0
    stack_key: tuple = ()
    instance: int = 0
    thickness: Optional[float] = None
    location: Optional[PixelLocation] = field(default=None, repr=False)
    format: Optional[PixelFormat] = field(default=None, repr=False)
    deflated: bool = False  # Deflated Explicit VR Little Endian: pixels are read from the inflated copy
    temporal: tuple = ()  # temporal.Temporal: what orders images sharing a position in time


def _float(value, default=None):
    v = temporal.number(value)
    return default if v is None else v


def _element_header(fp, implicit: bool, little: bool) -> Optional[tuple[tuple[int, int], Optional[int], int]]:
    """(tag, length or None if undefined, header size) of the element at fp, or None at the end."""
    head = fp.read(8)
    if len(head) < 8:
        return None
    order = "little" if little else "big"
    tag = (int.from_bytes(head[0:2], order), int.from_bytes(head[2:4], order))
    if implicit or not head[4:6].isalpha():  # files that say explicit VR but are not (pydicom copes)
        length, size = int.from_bytes(head[4:8], order), 8
    elif head[4:6] in _LONG_VRS:
        more = fp.read(4)
        if len(more) < 4:
            return None
        length, size = int.from_bytes(more, order), 12
    else:
        length, size = int.from_bytes(head[6:8], order), 8
    return tag, (None if length == 0xFFFFFFFF else length), size


def _count_fragments(fp, little: bool, end: int) -> int:
    """Items after the Basic Offset Table in encapsulated pixel data, walked by their headers."""
    order = "little" if little else "big"
    items = 0
    while items <= _MAX_ITEMS:
        head = fp.read(8)
        if len(head) < 8:
            break
        group, elem = int.from_bytes(head[0:2], order), int.from_bytes(head[2:4], order)
        if (group, elem) != (0xFFFE, 0xE000):
            break  # the sequence delimiter, or corrupt data: what was counted is what there is
        length = int.from_bytes(head[4:8], order)
        if length == 0xFFFFFFFF or fp.tell() + length > end:
            break
        fp.seek(length, 1)
        items += 1
    return max(items - 1, 0)


def pixel_extent(fp, ds, file_size: int) -> tuple[Optional[PixelExtent], Optional[PixelLocation]]:
    """After ``dcmread(fp, stop_before_pixels=True)``, fp sits at the top-level pixel data element:
    how much the file really holds of it and, for native little-endian data, where it lies."""
    implicit, little = ds.original_encoding
    if implicit is None:
        return None, None
    start = fp.tell()
    found = _element_header(fp, implicit, little)
    if found is None or found[0] not in _PIXEL_TAGS:
        return None, None
    tag, length, size = found
    data = start + size
    floats = tag != (0x7FE0, 0x0010)
    if length is None:
        return PixelExtent(None, max(file_size - data, 0), _count_fragments(fp, little, file_size),
                           float_data=floats), None
    extent = PixelExtent(length, max(min(length, file_size - data), 0), float_data=floats)
    native = tag == (0x7FE0, 0x0010) and getattr(ds, "file_meta", {}).get("TransferSyntaxUID") in _NATIVE_LE
    return extent, PixelLocation(data, extent.available) if native else None


def read_header(path: Path):
    """Header without pixel data, what the file holds of its pixel data, and where native
    little-endian pixel data lies for a direct read (or None).

    Files without the DICM preamble (old ACR-NEMA style) are read with ``force`` but kept only
    if they look like an image header, so random files in a folder are not taken for DICOM.
    Deflated files are inflated under a cap (formats.dicom.deflated), never whole by pydicom.
    """
    with open(path, "rb") as fp:
        if is_deflated(fp):
            inflated = inflate(path, header_only=True)
            ds = pydicom.dcmread(inflated.file, stop_before_pixels=True)
            extent, _ = pixel_extent(inflated.file, ds, inflated.data_offset + inflated.size)
            if extent is not None:
                extent.deflated = True
            return ds, None, extent
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
        except InvalidDicomError:
            fp.seek(0)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            if "SOPClassUID" not in ds and "Rows" not in ds:
                raise
        extent, loc = pixel_extent(fp, ds, path.stat().st_size)
    return ds, loc, extent


def _spacing(path: Path, item, where: str = "") -> Optional[tuple[float, float]]:
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        v = validate.finite(path, item.get(kw), kw, 2, SPACING_LIMIT, where) if kw in item else None
        if v is not None and np.all(v >= MIN_SPACING_MM):
            return float(v[0]), float(v[1])
        if v is not None and np.any(v != 0):  # all zeros: "unknown", as some secondary captures write it
            raise FormatError(path, f"{kw}{where} is {v.tolist()}: not a pixel size "
                                    f"(at least {MIN_SPACING_MM:g} mm); refused")
    return None


def _geometry(path: Path, item, where: str = "") -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """ImagePositionPatient and ImageOrientationPatient of ``item``: refused when not finite or absurd."""
    pos = validate.finite(path, item.get("ImagePositionPatient"), "ImagePositionPatient", 3, POSITION_LIMIT, where)
    ori = validate.finite(path, item.get("ImageOrientationPatient"), "ImageOrientationPatient", 6, 1.5, where)
    return pos, ori


def _thickness(path: Path, item, where: str = "") -> Optional[float]:
    """SliceThickness (the slice spacing of a lone slice): absent when not positive, refused when absurd."""
    v = validate.finite(path, item.get("SliceThickness"), "SliceThickness", 1, SPACING_LIMIT, where)
    return float(v[0]) if v is not None and v[0] > 0 else None


def _rescale(path: Path, item, fmt: PixelFormat, where: str = "") -> tuple[float, float]:
    """RescaleSlope/Intercept (a slope of 0 or an unreadable value counts as absent); refused when
    not finite or absurd."""
    def number(kw, default):
        try:
            return float(item.get(kw, default))
        except (TypeError, ValueError):
            return default
    slope, intercept = number("RescaleSlope", 1.0) or 1.0, number("RescaleIntercept", 0.0)
    validate.check_rescale(path, slope, intercept, fmt, where)
    return slope, intercept


def _first(seq_owner, seq_kw):
    seq = seq_owner.get(seq_kw) if seq_owner is not None else None
    return seq[0] if seq else None


def frames_of(path: Path, ds, loc: Optional[PixelLocation], extent: Optional[PixelExtent]) -> list[FrameRef]:
    """The frames of one file, after its header has been checked against what the file holds."""
    fmt = PixelFormat(ds, path)
    try:
        fmt.check_allocation(path)
    except TooLargeError as exc:
        if fmt.frames <= 1:
            raise
        raise TooLargeError(path, f"NumberOfFrames {fmt.frames}: {exc.problem}") from None
    validate.check_extent(path, fmt, extent, encapsulated=extent is not None and extent.declared is None)
    if fmt.frames > MAX_FRAMES:
        raise FormatError(path, f"NumberOfFrames {fmt.frames} is more than any real acquisition "
                                f"(at most {MAX_FRAMES}); refused")
    frames = _frames(path, ds, loc, fmt)
    for f in frames:
        f.format, f.deflated = fmt, extent.deflated
    return frames


def _frames(path: Path, ds, loc: Optional[PixelLocation], fmt: PixelFormat) -> list[FrameRef]:
    rows, cols, n = fmt.rows, fmt.cols, fmt.frames
    instance = int(_float(ds.get("InstanceNumber", 0), 0) or 0)
    if n <= 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        key = tuple(str(ds.get(k, "")) for k in ("AcquisitionNumber", "EchoNumbers", "TemporalPositionIdentifier"))
        return [FrameRef(path, None, rows, cols, *_geometry(path, ds), _spacing(path, ds),
                         *_rescale(path, ds, fmt), key, instance, _thickness(path, ds), loc,
                         temporal=temporal.of_dataset(ds))]
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    top_pos, top_ori = _geometry(path, ds)
    out = []
    for f in range(n):
        item = per[f] if f < len(per) else None
        where = f" (frame {f + 1})"

        def pick(seq_kw, _item=item):
            return _first(_item, seq_kw) or _first(shared, seq_kw)

        pos = pick("PlanePositionSequence")
        ori = pick("PlaneOrientationSequence")
        meas = pick("PixelMeasuresSequence")
        trans = pick("PixelValueTransformationSequence")
        content = _first(item, "FrameContentSequence")
        echo = pick("MREchoSequence")
        key = (str(content.get("StackID", "")) if content else "",
               str(content.get("TemporalPositionIndex", "")) if content else "",
               str(echo.get("EffectiveEchoTime", "")) if echo else "")
        out.append(FrameRef(
            path, f, rows, cols,
            _geometry(path, pos, where)[0] if pos else top_pos,
            _geometry(path, ori, where)[1] if ori else top_ori,
            (_spacing(path, meas, where) if meas else None) or _spacing(path, ds),
            *_rescale(path, trans if trans else ds, fmt, where),
            key, instance, _thickness(path, meas, where) if meas else _thickness(path, ds), loc,
            temporal=temporal.of_frame(content, pick("CardiacSynchronizationSequence"))))
    return out
