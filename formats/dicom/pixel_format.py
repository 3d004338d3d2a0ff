"""How a DICOM file's stored pixels are laid out, checked against the memory budget."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pydicom

from core.errors import FormatError
from formats.dicom.validate import check_pixel_description, native_bytes
from formats.limits import check_allocation


class PixelFormat:
    """How one file's stored pixels are laid out (from its header)."""

    def __init__(self, ds: pydicom.Dataset, path: Path):
        try:
            self.rows, self.cols = int(ds.Rows), int(ds.Columns)
            self.bits = int(ds.get("BitsAllocated", 16))
            self.stored = int(ds.get("BitsStored", self.bits) or self.bits)
            self.signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
            spp = ds.get("SamplesPerPixel")
            self.spp = 1 if spp is None or spp == "" else int(spp)  # 0 is a lie, not "absent"
            self.frames = int(float(ds.get("NumberOfFrames", 1) or 1))
            self.planar = int(ds.get("PlanarConfiguration", 0) or 0)
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise FormatError(path, f"pixel description in the header is malformed ({exc})") from None
        self.photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
        if self.rows <= 0 or self.cols <= 0 or self.frames <= 0:
            raise FormatError(path, f"header declares an empty image ({self.rows}x{self.cols}, {self.frames} frames)")
        if self.bits not in (1, 8, 16, 32, 64):
            raise FormatError(path, f"BitsAllocated {self.bits} is not a supported pixel size")
        check_pixel_description(path, self)

    def check_allocation(self, path: Path) -> None:
        """Refuse a decoded size beyond the memory budget (formats.limits)."""
        out_dtype = np.uint8 if self.bits <= 8 and not self.signed else np.float64 if self.bits == 64 else np.int32
        shape = (self.frames, self.rows, self.cols) + ((self.spp,) if self.spp > 1 else ())
        check_allocation(path, shape, out_dtype, "DICOM pixel data")

    @property
    def native_dtype(self) -> Optional[np.dtype]:
        if self.bits not in (8, 16, 32):
            return None
        return np.dtype(f"<{'i' if self.signed else 'u'}{self.bits // 8}")

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.cols * self.spp * self.bits // 8

    @property
    def stored_bytes(self) -> int:
        """All frames as stored uncompressed (YBR_FULL_422 subsampled, 1-bit packed)."""
        return native_bytes(self)

    def direct_ok(self, has_location: bool) -> bool:
        return (has_location and self.native_dtype is not None
                and self.photometric in ("MONOCHROME1", "MONOCHROME2", "RGB")
                and (self.spp == 1 or self.planar == 0)
                and (self.stored == self.bits or not self.signed))
