"""Image grid geometry: the one place where voxel index and world position are converted.

Conventions (stated once, never a setting):
- voxel arrays are indexed ``[z, y, x]`` (``[k, j, i]``), with an optional trailing channel axis;
- spacing, origin, size and continuous indices are given in ``(x, y, z)`` = ``(i, j, k)`` order,
  as ITK and DICOM do;
- world coordinates are patient LPS millimetres;
- ``direction[:, a]`` is the unit LPS vector along index axis ``a`` (ITK's direction matrix).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.errors import GeometryError

_TOL = 1e-4  # direction cosines from DICOM strings and float32 NIfTI headers agree to this
MAX_SPACING_MM = 1e5  # 100 m voxels: no scanner makes them; a header saying so is corrupt
MIN_SPACING_MM = 1e-5  # 10 nm: finer than any microscope's pixels (whole-slide images are ~2.5e-4 mm)
MAX_ORIGIN_MM = 1e7  # 10 km from the scanner's origin


def _vec3(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise GeometryError(f"{name} must be 3 finite numbers, got {values!r}")
    return arr


@dataclass(frozen=True, eq=False)
class Geometry:
    """A regular grid in patient space: size (x, y, z), spacing, origin and direction."""

    size: tuple[int, int, int]
    spacing: np.ndarray = field(default_factory=lambda: np.ones(3))
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        size = tuple(int(s) for s in self.size)
        if len(size) != 3 or min(size) < 1:
            raise GeometryError(f"grid size must be 3 positive integers, got {self.size!r}")
        spacing = _vec3(self.spacing, "spacing")
        if np.any(spacing < MIN_SPACING_MM) or np.any(spacing > MAX_SPACING_MM):
            raise GeometryError(f"spacing must be between {MIN_SPACING_MM:g} and {MAX_SPACING_MM:g} mm, "
                                f"got {spacing.tolist()}")
        origin = _vec3(self.origin, "origin")
        if np.any(np.abs(origin) > MAX_ORIGIN_MM):
            raise GeometryError(f"origin must lie within {MAX_ORIGIN_MM:g} mm of the scanner's, got {origin.tolist()}")
        direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if not np.all(np.isfinite(direction)):
            raise GeometryError(f"direction must be finite numbers, got {direction.tolist()}")
        if not np.allclose(direction.T @ direction, np.eye(3), atol=_TOL):
            raise GeometryError(f"direction is not orthonormal: {direction.tolist()}")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    @classmethod
    def for_array_shape(cls, shape_zyx, spacing=(1, 1, 1), origin=(0, 0, 0), direction=None):
        z, y, x = (int(s) for s in shape_zyx[:3])
        return cls((x, y, z), spacing, origin, np.eye(3) if direction is None else direction)

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return self.size[2], self.size[1], self.size[0]

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) to LPS (x, y, z, 1)."""
        a = np.eye(4)
        a[:3, :3] = self.direction * self.spacing[np.newaxis, :]
        a[:3, 3] = self.origin
        return a

    @classmethod
    def from_affine(cls, size, affine) -> "Geometry":
        """Factor an LPS index-to-world affine into spacing and an orthonormal direction."""
        m = np.asarray(affine, dtype=np.float64)[:3, :3]
        if not np.all(np.isfinite(affine)):
            raise GeometryError("affine (direction, spacing, origin) must be finite numbers")
        spacing = np.linalg.norm(m, axis=0)
        if np.any(spacing <= 0):
            raise GeometryError("affine has a zero-length axis")
        return cls(size, spacing, np.asarray(affine, dtype=np.float64)[:3, 3], m / spacing)

    def index_to_world(self, ijk) -> np.ndarray:
        """Continuous (i, j, k) indices (..., 3) to LPS mm (..., 3)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ (self.direction * self.spacing).T + self.origin

    def world_to_index(self, xyz) -> np.ndarray:
        """LPS mm (..., 3) to continuous (i, j, k) indices (..., 3)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        return ((xyz - self.origin) @ self.direction) / self.spacing

    def index_to_index(self, other: "Geometry") -> np.ndarray:
        """4x4 matrix from this grid's (i, j, k, 1) to ``other``'s (overlays of another grid)."""
        return np.linalg.inv(other.affine) @ self.affine

    def contains_index(self, ijk) -> bool:
        ijk = np.asarray(ijk, dtype=np.float64)
        return bool(np.all(ijk > -0.5) and np.all(ijk < np.asarray(self.size) - 0.5))

    def same_grid(self, other: "Geometry", tol: float = 1e-6) -> bool:
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, rtol=0, atol=tol)
            and np.allclose(self.origin, other.origin, rtol=0, atol=tol)
            and np.allclose(self.direction, other.direction, rtol=0, atol=tol)
        )

    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def orientation_code(self) -> str:
        """Where each index axis points, one letter per axis (nibabel style: identity direction is "LPS")."""
        pos = ("L", "P", "S")
        neg = ("R", "A", "I")
        letters = []
        for a in range(3):
            v = self.direction[:, a]
            m = int(np.argmax(np.abs(v)))
            letters.append(pos[m] if v[m] > 0 else neg[m])
        return "".join(letters)

    def is_oblique(self, tol: float = 1e-3) -> bool:
        return not np.allclose(np.abs(self.direction).max(axis=0), 1.0, atol=tol)

    def with_size(self, size) -> "Geometry":
        return Geometry(size, self.spacing, self.origin, self.direction)

    def describe(self) -> dict:
        return {
            "size_xyz": list(self.size),
            "spacing_mm": [float(v) for v in self.spacing],
            "origin_lps_mm": [float(v) for v in self.origin],
            "direction": [[float(v) for v in row] for row in self.direction],
            "orientation": self.orientation_code(),
            "oblique": self.is_oblique(),
        }
