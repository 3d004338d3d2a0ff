"""Display grid: any image shown in patient orientation, as radiologists read it.

The display grid is axis-aligned in LPS: display index x runs toward the patient's left, y toward
posterior, z toward superior (arrays ``[z, y, x]`` as everywhere). A volume whose axes are
permuted or flipped relative to LPS is shown through a numpy view (no copy); an oblique volume is
resampled once onto an LPS-aligned grid that covers it, keeping its resolution.

Views (rows, cols) of the display array, with the screen conventions of 3D Slicer / ITK-SNAP:
- axial    ``a[k]``        rows = y (A at top), cols = x (patient right on screen left);
- coronal  ``a[:, j]``     rows = z (S at top), cols = x;
- sagittal ``a[:, :, i]``  rows = z (S at top), cols = y (anterior on screen left).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.geometry import Geometry
from core.resample import covering_grid, resample

VIEWS = ("axial", "coronal", "sagittal")

#: per view: the display array axis that is sliced, and the (row, col) display index axes (x=0, y=1, z=2)
_SLICED_INDEX_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
_PLANE_INDEX_AXES = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}
#: screen letters (left, right, top, bottom)
LETTERS = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "S", "I"), "sagittal": ("A", "P", "S", "I")}
#: rows grow downward on screen in the axial view only (A at top); the others put S at the top
ROWS_DOWN = {"axial": True, "coronal": False, "sagittal": False}


@dataclass(frozen=True)
class DisplayGrid:
    """How arrays on ``source`` are shown on ``grid`` (identity direction)."""

    source: Geometry
    grid: Geometry
    #: non-oblique: source array axes order and flips giving the display array; None = resample
    transpose: tuple[int, int, int] | None
    flips: tuple[bool, bool, bool]

    @classmethod
    def for_geometry(cls, source: Geometry) -> "DisplayGrid":
        if not source.is_oblique():
            return cls._permuted(source)
        return cls._resampled(source)

    @classmethod
    def _permuted(cls, source: Geometry) -> "DisplayGrid":
        d = source.direction
        # world axis m is carried by source index axis a(m)
        a_of_m = [int(np.argmax(np.abs(d[m, :]))) for m in range(3)]
        sign = [float(np.sign(d[m, a_of_m[m]])) for m in range(3)]
        size = tuple(source.size[a_of_m[m]] for m in range(3))
        spacing = [source.spacing[a_of_m[m]] for m in range(3)]
        corner = np.zeros(3)
        for m in range(3):
            if sign[m] < 0:
                corner[a_of_m[m]] = source.size[a_of_m[m]] - 1
        origin = source.index_to_world(corner)
        grid = Geometry(size, spacing, origin, np.eye(3))
        # display array axis dd (0=z,1=y,2=x) is world axis m = 2 - dd, source array axis 2 - a(m)
        transpose = tuple(2 - a_of_m[2 - dd] for dd in range(3))
        flips = tuple(sign[2 - dd] < 0 for dd in range(3))
        return cls(source, grid, transpose, flips)

    @classmethod
    def _resampled(cls, source: Geometry) -> "DisplayGrid":
        # each world axis keeps the spacing of the source axis closest to it
        spacing = [source.spacing[int(np.argmax(np.abs(source.direction[m, :])))] for m in range(3)]
        return cls(source, covering_grid(source, spacing), None, (False, False, False))

    @property
    def is_view(self) -> bool:
        """True when display arrays are numpy views of the source (edits show without resampling)."""
        return self.transpose is not None

    def to_display(self, array: np.ndarray, order: int = 1, fill=0) -> np.ndarray:
        """A source-grid array ``[z, y, x(, c)]`` on the display grid (a view unless oblique)."""
        if self.transpose is not None:
            extra = tuple(range(3, array.ndim))
            out = np.transpose(array, self.transpose + extra)
            index = tuple(slice(None, None, -1) if f else slice(None) for f in self.flips)
            return out[index]
        return self._resample(array, order, fill)

    def _resample(self, array: np.ndarray, order: int, fill) -> np.ndarray:
        if array.ndim == 4:
            return np.stack([self._resample(array[..., c], order, fill) for c in range(array.shape[3])], axis=-1)
        out = resample(array, self.source, self.grid, order, fill)
        return out if out.dtype == array.dtype else out.astype(array.dtype)

    # -- views -------------------------------------------------------------------------------
    def n_slices(self, view: str) -> int:
        return self.grid.size[_SLICED_INDEX_AXIS[view]]

    def sliced_axis(self, view: str) -> int:
        """The display index axis (x=0, y=1, z=2) a view steps through."""
        return _SLICED_INDEX_AXIS[view]

    def plane_axes(self, view: str) -> tuple[int, int]:
        """Display index axes (x=0, y=1, z=2) along the view's rows and columns."""
        return _PLANE_INDEX_AXES[view]

    def plane_spacing(self, view: str) -> tuple[float, float]:
        r, c = _PLANE_INDEX_AXES[view]
        return float(self.grid.spacing[r]), float(self.grid.spacing[c])

    @staticmethod
    def take_slice(display_array: np.ndarray, view: str, index: int) -> np.ndarray:
        """The (rows, cols[, c]) plane of a display array."""
        if view == "axial":
            return display_array[index]
        if view == "coronal":
            return display_array[:, index]
        return display_array[:, :, index]

    def plane_to_index(self, view: str, index: int, row: float, col: float) -> np.ndarray:
        """Continuous display index (x, y, z) of a point given by (row, col) in a view's slice."""
        ijk = np.zeros(3)
        ijk[_SLICED_INDEX_AXIS[view]] = index
        r, c = _PLANE_INDEX_AXES[view]
        ijk[r], ijk[c] = row, col
        return ijk

    def clamp_index(self, ijk) -> np.ndarray:
        """Nearest voxel of the display grid (integer (x, y, z))."""
        return np.clip(np.rint(np.asarray(ijk, dtype=np.float64)), 0, np.asarray(self.grid.size) - 1).astype(int)
