"""One DICOM frame's header facts, read once while scanning; pixels are fetched later."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from formats.dicom.pixel_format import PixelFormat

_NATIVE_LE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}
_PIXEL_TAG = b"\xe0\x7f\x10\x00"


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


def _floats(value, n) -> Optional[np.ndarray]:
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _float(value, default=None):
    try:
        v = float(value)
        return v if np.isfinite(v) else default
    except (TypeError, ValueError):
        return default


def locate_native_pixels(fp, ds) -> Optional[PixelLocation]:
    """After ``dcmread(fp, stop_before_pixels=True)``, fp sits at the PixelData element."""
    if ds.file_meta.get("TransferSyntaxUID") not in _NATIVE_LE:
        return None
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8 or head[:4] != _PIXEL_TAG:
        return None
    if head[4:6] in (b"OW", b"OB"):
        length, data = int.from_bytes(head[8:12], "little"), start + 12
    else:
        length, data = int.from_bytes(head[4:8], "little"), start + 8
    if length == 0xFFFFFFFF:
        return None
    return PixelLocation(data, length)


def read_header(path: Path):
    """Header without pixel data, plus where native pixel data lies (or None).

    Files without the DICM preamble (old ACR-NEMA style) are read with ``force`` but kept only
    if they look like an image header, so random files in a folder are not taken for DICOM.
    """
    with open(path, "rb") as fp:
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
        except InvalidDicomError:
            fp.seek(0)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            if "SOPClassUID" not in ds and "Rows" not in ds:
                raise
        loc = locate_native_pixels(fp, ds) if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else None
    return ds, loc


def _spacing(item) -> Optional[tuple[float, float]]:
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        v = _floats(item.get(kw), 2) if kw in item else None
        if v is not None and np.all(v > 0):
            return float(v[0]), float(v[1])
    return None


def _first(seq_owner, seq_kw):
    seq = seq_owner.get(seq_kw) if seq_owner is not None else None
    return seq[0] if seq else None


def frames_of(path: Path, ds, loc: Optional[PixelLocation]) -> list[FrameRef]:
    frames = _frames(path, ds, loc)
    fmt = PixelFormat(ds, path)
    for f in frames:
        f.format = fmt
    return frames


def _frames(path: Path, ds, loc: Optional[PixelLocation]) -> list[FrameRef]:
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    n = int(_float(ds.get("NumberOfFrames", 1), 1) or 1)
    instance = int(_float(ds.get("InstanceNumber", 0), 0) or 0)
    if n <= 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        key = tuple(str(ds.get(k, "")) for k in ("AcquisitionNumber", "EchoNumbers", "TemporalPositionIdentifier"))
        return [FrameRef(path, None, rows, cols, _floats(ds.get("ImagePositionPatient"), 3),
                         _floats(ds.get("ImageOrientationPatient"), 6), _spacing(ds),
                         _float(ds.get("RescaleSlope"), 1.0) or 1.0, _float(ds.get("RescaleIntercept"), 0.0),
                         key, instance, _float(ds.get("SliceThickness")), loc)]
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    out = []
    for f in range(n):
        item = per[f] if f < len(per) else None

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
            _floats(pos.get("ImagePositionPatient"), 3) if pos else _floats(ds.get("ImagePositionPatient"), 3),
            _floats(ori.get("ImageOrientationPatient"), 6) if ori else _floats(ds.get("ImageOrientationPatient"), 6),
            (_spacing(meas) if meas else None) or _spacing(ds),
            _float(trans.get("RescaleSlope"), 1.0) if trans else _float(ds.get("RescaleSlope"), 1.0) or 1.0,
            _float(trans.get("RescaleIntercept"), 0.0) if trans else _float(ds.get("RescaleIntercept"), 0.0),
            key, instance, _float(meas.get("SliceThickness")) if meas else _float(ds.get("SliceThickness")), loc))
    return out
