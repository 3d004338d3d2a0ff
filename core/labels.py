"""Label maps and the label table (names, colours, coded concepts) that travels with them."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Optional

import numpy as np

from core.errors import GeometryError
from core.geometry import Geometry

# A distinct, colour-blind-friendly cycle for labels that come without a colour.
_PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
]


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM / SNOMED-CT): scheme designator, code value, meaning."""

    scheme: str
    value: str
    meaning: str

    def to_dict(self) -> dict:
        return {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional["Code"]:
        return None if not d else cls(str(d["scheme"]), str(d["value"]), str(d["meaning"]))


@dataclass(frozen=True)
class Label:
    value: int
    name: str
    color: tuple[int, int, int]
    category: Optional[Code] = None
    type: Optional[Code] = None

    def to_dict(self) -> dict:
        d = {"value": self.value, "name": self.name, "color": list(self.color)}
        if self.category:
            d["category"] = self.category.to_dict()
        if self.type:
            d["type"] = self.type.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Label":
        color = tuple(int(c) for c in d.get("color", default_color(int(d["value"]))))
        return cls(int(d["value"]), str(d.get("name", f"Label {d['value']}")), color,
                   Code.from_dict(d.get("category")), Code.from_dict(d.get("type")))


def default_color(value: int) -> tuple[int, int, int]:
    return _PALETTE[(value - 1) % len(_PALETTE)]


def _lab(rgb) -> np.ndarray:
    """sRGB (0-255) to CIELAB (D65), for colour distances people see."""
    c = np.asarray(rgb, dtype=np.float64).reshape(-1, 3) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def distinct_color(taken: Iterable[tuple[int, int, int]]) -> tuple[int, int, int]:
    """The palette colour farthest (CIE76 distance) from every colour already in use, so a new
    segment never looks like Liver beside Liver. Near-greys are skipped: they vanish on grey images."""
    taken = [tuple(c) for c in taken]
    candidates = [c for c in _PALETTE if np.ptp(c) > 60]
    if not taken:
        return candidates[0]
    d = np.linalg.norm(_lab(candidates)[:, None] - _lab(taken)[None], axis=2).min(axis=1)
    return candidates[int(np.argmax(d))]


@dataclass(frozen=True)
class LabelTable:
    """Ordered labels; value 0 is background and never listed."""

    labels: tuple[Label, ...] = ()

    def __post_init__(self) -> None:
        values = [lab.value for lab in self.labels]
        if len(set(values)) != len(values):
            raise ValueError(f"duplicate label values in {values}")
        if any(v <= 0 for v in values):
            raise ValueError("label values must be positive (0 is background)")

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "LabelTable":
        return cls(tuple(Label(i, n, default_color(i)) for i, n in enumerate(names, start=1)))

    @classmethod
    def for_values(cls, values: Iterable[int]) -> "LabelTable":
        return cls(tuple(Label(int(v), f"Label {int(v)}", default_color(int(v)))
                         for v in sorted(set(int(v) for v in values)) if v > 0))

    def __iter__(self):
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, value: int) -> Optional[Label]:
        return next((lab for lab in self.labels if lab.value == value), None)

    def by_name(self, name: str) -> Optional[Label]:
        return next((lab for lab in self.labels if lab.name.lower() == name.lower()), None)

    def values(self) -> list[int]:
        return [lab.value for lab in self.labels]

    def with_label(self, label: Label) -> "LabelTable":
        rest = tuple(lab for lab in self.labels if lab.value != label.value)
        return LabelTable(tuple(sorted(rest + (label,), key=lambda lab: lab.value)))

    def without(self, values: Iterable[int]) -> "LabelTable":
        """This table less the entries of ``values`` (a deleted segment)."""
        gone = {int(v) for v in values}
        return type(self)(tuple(lab for lab in self.labels if lab.value not in gone))

    def completed_for(self, values: Iterable[int]) -> "LabelTable":
        """This table plus default entries for values present in an array but not named."""
        table = self
        for v in sorted(set(int(v) for v in values)):
            if v > 0 and table.get(v) is None:
                table = table.with_label(Label(v, f"Label {v}", default_color(v)))
        return table

    def to_dict(self) -> dict:
        return {"labels": [lab.to_dict() for lab in self.labels]}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelTable":
        return cls(tuple(Label.from_dict(x) for x in d.get("labels", [])))


# voxels np.bincount is given at a time: it counts an int64 copy of its input, 2 MiB at this size
# (16 slices of a 512x512 map were 32 MiB, the top of the window's peak memory with the 3D view),
# and a slab this small stays in the CPU's cache (~1.7x faster than 16 slices)
SLAB_VOXELS = 1 << 18


def _slabs(array: np.ndarray):
    """``array`` flattened a few slices at a time (about SLAB_VOXELS voxels each)."""
    rows = max(1, SLAB_VOXELS // max(1, int(np.prod(array.shape[1:]))))
    for k in range(0, array.shape[0], rows):
        yield array[k:k + rows].reshape(-1)


def _values_present(array: np.ndarray) -> np.ndarray:
    """The values in a label array; 8- and 16-bit maps by counting in slabs (~6x faster than
    np.unique on a 512x512x300 map, and no int64 copy of it: every copy of a map scans it)."""
    if array.dtype.kind != "u" or array.dtype.itemsize > 2:
        return np.unique(array)
    seen = np.zeros(int(array.max(initial=0)) + 1, bool)
    for slab in _slabs(array):
        seen |= np.bincount(slab, minlength=seen.size) > 0
    return np.flatnonzero(seen)


@dataclass(eq=False)
class LabelMap:
    """Integer labels on exactly a Volume's grid ([z, y, x]), with their table."""

    array: np.ndarray
    geometry: Geometry
    table: LabelTable = field(default_factory=LabelTable)

    def __post_init__(self) -> None:
        if self.array.ndim != 3 or not np.issubdtype(self.array.dtype, np.integer):
            raise GeometryError(f"a label map is a 3D integer array, got {self.array.dtype} {self.array.shape}")
        if tuple(self.array.shape) != self.geometry.shape_zyx:
            raise GeometryError(
                f"label array shape {self.array.shape} (z, y, x) does not match grid {self.geometry.size} (x, y, z)")
        if self.array.dtype.kind != "u" and self.array.min(initial=0) < 0:
            raise GeometryError("label values must be non-negative")
        self.table = self.table.completed_for(_values_present(self.array))

    @classmethod
    def empty_like(cls, geometry: Geometry, table: Optional[LabelTable] = None, dtype=np.uint8) -> "LabelMap":
        return cls(np.zeros(geometry.shape_zyx, dtype=dtype), geometry, table or LabelTable())

    def present_values(self) -> list[int]:
        return [int(v) for v in np.unique(self.array) if v > 0]

    def mask(self, value: int) -> np.ndarray:
        return self.array == value

    def volumes_ml(self) -> dict[int, float]:
        counts = np.zeros(1, np.int64)
        for slab in _slabs(self.array):  # no int64 copy of the whole map
            c = np.bincount(slab)
            counts = np.pad(counts, (0, max(0, c.size - counts.size)))
            counts[:c.size] += c
        vml = self.geometry.voxel_volume_ml()
        return {lab.value: float(counts[lab.value] * vml) if lab.value < counts.size else 0.0
                for lab in self.table}

    def copy(self) -> "LabelMap":
        return LabelMap(self.array.copy(), self.geometry, replace(self.table))
