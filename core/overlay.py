"""Overlay layers drawn over an image: the label map and generic heat maps (saliency, uncertainty).

Both are shown as 8-bit indices into an RGBA lookup table, so visibility, colour, opacity and
threshold changes only rebuild a 256-entry table, never the voxels. A heat map is quantised to
256 levels over its value range when it is created: a quarter of float32's memory, exact to
1/255 of the range, which is finer than a colour map can show.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import GeometryError
from core.geometry import Geometry
from core.labels import LabelTable


def label_lut(table: LabelTable, hidden: set[int] = frozenset(), opacity: float = 0.5,
              size: int = 256) -> np.ndarray:
    """RGBA table indexed by label value; background and hidden segments are transparent."""
    lut = np.zeros((max(size, 256), 4), dtype=np.uint8)
    alpha = int(round(np.clip(opacity, 0.0, 1.0) * 255))
    for lab in table:
        if 0 < lab.value < lut.shape[0] and lab.value not in hidden:
            lut[lab.value, :3] = lab.color
            lut[lab.value, 3] = alpha
    return lut


def outline(plane: np.ndarray) -> np.ndarray:
    """The label plane kept only on pixels whose 4-neighbourhood holds another value."""
    edge = np.zeros(plane.shape, dtype=bool)
    edge[1:, :] |= plane[1:, :] != plane[:-1, :]
    edge[:-1, :] |= plane[:-1, :] != plane[1:, :]
    edge[:, 1:] |= plane[:, 1:] != plane[:, :-1]
    edge[:, :-1] |= plane[:, :-1] != plane[:, 1:]
    return np.where(edge, plane, 0).astype(plane.dtype, copy=False)


@dataclass(eq=False)
class HeatMap:
    """A scalar map on an image's grid, shown with a colour map above a threshold."""

    name: str
    codes: np.ndarray  # uint8 [z, y, x]: 0..255 over [vmin, vmax]
    geometry: Geometry
    vmin: float
    vmax: float
    colormap: str = "inferno"
    opacity: float = 0.6
    threshold: float = field(default=None)  # values below are transparent; None = vmin
    visible: bool = True
    meaning: str = ""  # the legend line: what the values mean and what they do not

    def __post_init__(self) -> None:
        if self.codes.dtype != np.uint8 or tuple(self.codes.shape) != self.geometry.shape_zyx:
            raise GeometryError(f"heat map '{self.name}' must be uint8 on its image grid")
        if self.threshold is None:
            self.threshold = self.vmin

    @classmethod
    def from_values(cls, name: str, values: np.ndarray, geometry: Geometry, vmin=None, vmax=None,
                    **kw) -> "HeatMap":
        values = np.asarray(values)
        if tuple(values.shape) != geometry.shape_zyx:
            raise GeometryError(f"heat map '{name}' shape {values.shape} does not match the image grid "
                                f"{geometry.shape_zyx} (z, y, x)")
        finite = values[np.isfinite(values)]
        lo = float(finite.min()) if vmin is None and finite.size else float(vmin or 0.0)
        hi = float(finite.max()) if vmax is None and finite.size else float(1.0 if vmax is None else vmax)
        if hi <= lo:
            hi = lo + 1.0
        codes = np.empty(values.shape, dtype=np.uint8)
        # in slabs so a float64 copy of the whole volume is never made
        for k in range(values.shape[0]):
            v = np.nan_to_num(values[k].astype(np.float32), nan=lo)
            np.clip(np.rint((v - lo) * (255.0 / (hi - lo))), 0, 255, out=v)
            codes[k] = v
        return cls(name, codes, geometry, lo, hi, **kw)

    def value_of(self, code: int) -> float:
        return self.vmin + float(code) * (self.vmax - self.vmin) / 255.0

    def lut(self, colors: np.ndarray) -> np.ndarray:
        """RGBA table for codes 0..255 from a (256, 3) colour map: transparent below threshold."""
        lut = np.zeros((256, 4), dtype=np.uint8)
        lut[:, :3] = colors[:, :3]
        if not self.visible:
            return lut
        first = int(np.ceil((self.threshold - self.vmin) * 255.0 / (self.vmax - self.vmin) - 1e-9))
        lut[max(first, 0):, 3] = int(round(np.clip(self.opacity, 0, 1) * 255))
        if self.threshold <= self.vmin:
            lut[0, 3] = 0  # the map's minimum is "nothing here", as in saliency displays
        return lut
