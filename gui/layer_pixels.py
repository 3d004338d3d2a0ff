"""Slice layers coloured into buffers kept from one slice to the next.

core.render2d says how planes become premultiplied ARGB; here the same lookups write into a
view's own buffers, so a slice change allocates (and page-faults) nothing, and ``np.take`` runs
unbuffered (``mode="clip"``: every index is within its table by construction)."""
from __future__ import annotations

import numpy as np

from core.render2d import WindowLut, codes_argb, image_argb


class LayerBuffers:
    """One reusable buffer per layer name, reallocated only when the plane's shape changes."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple, dtype=np.uint32) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(shape, dtype)
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


def over_table(top: np.ndarray, below: np.ndarray) -> np.ndarray:
    """Premultiplied ARGB of ``top[i]`` over ``below[j]`` at index ``j * 256 + i`` (two 256-entry
    premultiplied tables): a label colour over a heat-map colour, looked up in one step."""
    t, b = top[:256].astype(np.uint32), below[:256].astype(np.uint32)
    inv = 255 - (t >> 24)[None, :]
    out = np.zeros((256, 256), np.uint32)
    for shift in (0, 8, 16, 24):
        c = ((t >> shift) & 0xFF)[None, :] + (((b >> shift) & 0xFF)[:, None] * inv + 127) // 255
        out |= np.minimum(c, 255) << shift
    return out.ravel()


def composite_into(labels: np.ndarray, heat: np.ndarray, table: np.ndarray, index: np.ndarray,
                   out: np.ndarray) -> np.ndarray:
    """Label codes over heat codes (uint8 planes) through an ``over_table``: one lookup and one
    layer for Qt to blend instead of two. ``index``: a uint16 buffer of the planes' shape."""
    np.left_shift(heat, 8, out=index, dtype=np.uint16)
    np.bitwise_or(index, labels, out=index)
    return np.take(table, index, out=out, mode="clip")
