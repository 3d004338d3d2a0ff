"""Header sanity for DICOM images: what native decoders and numpy would choke on, checked first.

Every check raises FormatError naming the file and the DICOM attribute, so a folder scan can skip
the file with that reason and a single file is refused with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import FormatError, TooLargeError
from formats.limits import human

#: samples per pixel each PhotometricInterpretation needs (PS3.3 C.7.6.3.1.2)
COMPONENTS = {"MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3, "HSV": 3, "YBR_FULL": 3,
              "YBR_FULL_422": 3, "YBR_PARTIAL_422": 3, "YBR_PARTIAL_420": 3, "YBR_ICT": 3, "YBR_RCT": 3,
              "ARGB": 4, "CMYK": 4}

#: |mm| beyond which a position is no patient's (100 m) and a pixel no scanner's (10 m)
POSITION_LIMIT = 1e5
SPACING_LIMIT = 1e4
#: |rescaled value| beyond which a slope/intercept is not a measurement (float32 keeps ~1e38)
RESCALE_LIMIT = 1e30


@dataclass
class PixelExtent:
    """What the file really holds for the top-level pixel data element."""

    declared: Optional[int]  # the element's length; None when undefined (encapsulated)
    available: int  # bytes after the element header up to the end of the file (or the length)
    fragments: Optional[int] = None  # compressed fragments (encapsulated data only)
    deflated: bool = False  # measured in the inflated data set of a deflated file
    float_data: bool = False  # FloatPixelData / DoubleFloatPixelData rather than PixelData


def check_pixel_description(path: Path, fmt) -> None:
    """Rows, columns, bits and components that agree with each other (``fmt``: a PixelFormat)."""
    if not (0 < fmt.rows <= 65535 and 0 < fmt.cols <= 65535):
        raise FormatError(path, f"Rows {fmt.rows} / Columns {fmt.cols}: not an image size (1 to 65535)")
    if not 0 < fmt.stored <= fmt.bits:
        raise FormatError(path, f"BitsStored {fmt.stored} does not fit BitsAllocated {fmt.bits}")
    need = COMPONENTS.get(fmt.photometric)
    if need is None:
        raise FormatError(path, f"PhotometricInterpretation {fmt.photometric!r} is not a DICOM colour model")
    if fmt.spp != need:
        raise FormatError(path, f"PhotometricInterpretation {fmt.photometric} needs {need} sample(s) per pixel "
                                f"but SamplesPerPixel is {fmt.spp}; refused rather than guessing the colour model")
    if fmt.planar not in (0, 1):
        raise FormatError(path, f"PlanarConfiguration {fmt.planar} is neither 0 nor 1")


def native_bytes(fmt) -> int:
    """Bytes the header's frames take when stored uncompressed (YBR_FULL_422 is subsampled, 1-bit packed)."""
    n = fmt.frames * fmt.rows * fmt.cols * fmt.spp
    if fmt.bits == 1:
        return (n + 7) // 8
    n *= fmt.bits // 8
    return n // 3 * 2 if fmt.photometric == "YBR_FULL_422" else n


def check_extent(path: Path, fmt, extent: Optional[PixelExtent], encapsulated: bool) -> None:
    """NumberOfFrames x frame size against what the file really holds, before anything is allocated."""
    frames = f"NumberOfFrames {fmt.frames}" if fmt.frames > 1 else "the header"
    if extent is None:
        raise FormatError(path, "header describes an image but the file holds no pixel data "
                                "(a header-only or truncated file)")
    if fmt.bits == 64 and not extent.float_data:
        raise FormatError(path, "BitsAllocated 64 is only for DoubleFloatPixelData, not integer PixelData; refused")
    if encapsulated:
        if extent.fragments is not None and fmt.frames > extent.fragments:
            raise TooLargeError(path, f"NumberOfFrames is {fmt.frames} but the compressed pixel data "
                                      f"holds only {extent.fragments} fragment(s): truncated or corrupt")
        return
    need = native_bytes(fmt)
    if need > extent.available:
        cut = extent.declared is not None and extent.available < extent.declared
        raise TooLargeError(path, f"{frames} ({fmt.rows}x{fmt.cols}, {fmt.spp} x {fmt.bits} bit) declares "
                                  f"{human(need)} of pixel data but the file holds only {human(extent.available)}"
                                  f"{' (the file ends early)' if cut else ''}: truncated or corrupt")


def finite(path: Path, value, keyword: str, n: int, limit: float, where: str = "") -> Optional[np.ndarray]:
    """``n`` numbers of attribute ``keyword``; None when absent or not ``n`` numbers (treated as missing);
    refused when present but not finite or beyond ``limit``."""
    if value is None or value == "":
        return None
    try:
        items = list(value) if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") else [value]
        arr = np.asarray([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.shape != (n,):
        return None
    if not np.all(np.isfinite(arr)) or np.any(np.abs(arr) > limit):
        raise FormatError(path, f"{keyword}{where} is {arr.tolist()}: "
                                f"{'not finite' if not np.all(np.isfinite(arr)) else f'beyond {limit:g}'}; refused")
    return arr


def check_rescale(path: Path, slope: float, intercept: float, fmt, where: str = "") -> None:
    """Refuse a RescaleSlope/Intercept that is not finite or carries stored values past any real measurement."""
    for kw, v in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
        if not np.isfinite(v):
            raise FormatError(path, f"{kw}{where} is {v}: not a finite number; refused")
    top = float(2 ** min(fmt.stored, 64))
    reach = abs(slope) * top + abs(intercept)
    if reach > RESCALE_LIMIT:
        kw, v = ("RescaleIntercept", intercept) if abs(intercept) > abs(slope) * top else ("RescaleSlope", slope)
        raise FormatError(path, f"{kw}{where} is {v:g}: {fmt.stored}-bit values would reach {reach:.3g}, "
                                f"not a measurement; refused")


def j2k_size(codestream: bytes) -> Optional[tuple[int, int, int]]:
    """(rows, columns, components) from a JPEG 2000 codestream's SIZ marker (JP2 boxes skipped);
    None when it cannot be parsed (the decoder then says why)."""
    at = 0
    if codestream[4:8] == b"jP  ":
        while at + 8 <= len(codestream) and codestream[at + 4:at + 8] != b"jp2c":
            length = int.from_bytes(codestream[at:at + 4], "big")
            if length < 8:
                return None
            at += length
        at += 8
    siz = codestream[at:at + 42]
    if len(siz) < 42 or siz[0:4] != b"\xff\x4f\xff\x51":
        return None
    x, y, x0, y0 = (int.from_bytes(siz[8 + 4 * i:12 + 4 * i], "big") for i in range(4))
    return y - y0, x - x0, int.from_bytes(siz[40:42], "big")


def check_j2k_frames(path: Path, fmt, frames) -> None:
    """Each JPEG 2000 frame's own size and components against Rows, Columns and SamplesPerPixel,
    before OpenJPEG allocates what the codestream says."""
    for k, codestream in enumerate(frames, start=1):
        found = j2k_size(codestream)
        if found is not None and found != (fmt.rows, fmt.cols, fmt.spp):
            rows, cols, comps = found
            raise FormatError(path, f"JPEG 2000 frame {k} is {rows}x{cols} with {comps} component(s) but the header "
                                    f"says Rows {fmt.rows}, Columns {fmt.cols}, SamplesPerPixel {fmt.spp}; refused")
