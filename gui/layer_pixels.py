"""Slice layers coloured into buffers kept from one slice to the next.

core.render2d says how planes become premultiplied ARGB; here the same lookups write into a
view's own buffers, so a slice change allocates (and page-faults) nothing, and ``np.take`` runs
unbuffered (``mode="clip"``: every index is within its table by construction)."""
from __future__ import annotations

import numpy as np

from core.render2d import WindowLut, codes_argb, image_argb


class LayerBuffers:
    """One reusable uint32 buffer per layer name, reallocated only when the plane's shape changes."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != tuple(shape):
            buf = self._buffers[name] = np.empty(shape, np.uint32)
        return buf

    def drop(self, name: str) -> None:
        self._buffers.pop(name, None)


def image_into(plane: np.ndarray, lo: float, hi: float, lut: WindowLut, out: np.ndarray) -> np.ndarray:
    """``image_argb`` written into ``out`` (shape ``plane.shape[:2]``)."""
    if plane.ndim == 2 and plane.dtype.kind in "iu" and plane.dtype.itemsize <= 2:
        raw = plane.view(f"u{plane.dtype.itemsize}")
        return np.take(lut.table(plane.dtype, lo, hi), raw, out=out, mode="clip")
    out[...] = image_argb(plane, lo, hi, lut)
    return out


def codes_into(plane: np.ndarray, table: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``codes_argb`` written into ``out``."""
    if plane.dtype == np.uint8 and table.size >= 256:
        return np.take(table, plane, out=out, mode="clip")
    out[...] = codes_argb(plane, table)
    return out
