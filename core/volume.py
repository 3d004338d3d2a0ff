"""Volume: voxels plus the geometry that places them in the patient."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from core.errors import GeometryError
from core.geometry import Geometry


def luminance(rgb: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Luma of RGB(A) samples (last axis), ITU-R BT.601 weights: the grey PIL and DICOM viewers make of
    a colour image (a colour ultrasound's ROI reads it; grey-channel networks see it)."""
    return rgb[..., :3].astype(dtype) @ np.array([0.299, 0.587, 0.114], dtype)


@dataclass(frozen=True)
class WindowPreset:
    name: str
    center: float
    width: float


@dataclass(eq=False)
class Volume:
    """An image on a regular grid.

    ``array`` is ``[z, y, x]`` (grey) or ``[z, y, x, c]`` (colour, c = 3 or 4, uint8). Values are
    physical (rescale slope/intercept already applied: HU for CT). 2D images are one slice; cine
    loops (ultrasound, frames without patient positions) are frames stacked along z.

    The readers say what the file does not: ``spacing_known`` False when it gives no pixel size
    (the geometry's 1 mm is a placeholder: sizes are shown in pixels), ``orientation_known`` False
    when it gives no patient orientation (no R/L/A/P letters), ``frame_time_ms`` the time between
    frames of a cine loop when the file states it.
    """

    array: np.ndarray
    geometry: Geometry
    modality: str = "OT"
    description: str = ""
    source: str = ""
    window_presets: list[WindowPreset] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    spacing_known: bool = True
    orientation_known: bool = True
    frame_time_ms: Optional[float] = None

    def __post_init__(self) -> None:
        if self.array.ndim not in (3, 4):
            raise GeometryError(f"volume array must be 3D or 4D (colour), got {self.array.shape}")
        if self.array.ndim == 4 and self.array.shape[3] not in (3, 4):
            raise GeometryError(f"colour volumes need 3 or 4 channels, got {self.array.shape[3]}")
        if tuple(self.array.shape[:3]) != self.geometry.shape_zyx:
            raise GeometryError(
                f"array shape {self.array.shape[:3]} (z, y, x) does not match grid size "
                f"{self.geometry.size} (x, y, z)"
            )

    @classmethod
    def from_array(cls, array, spacing=(1, 1, 1), origin=(0, 0, 0), direction=None, **kw) -> "Volume":
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[np.newaxis]
        return cls(array, Geometry.for_array_shape(array.shape, spacing, origin, direction), **kw)

    @property
    def is_color(self) -> bool:
        return self.array.ndim == 4

    @property
    def is_2d(self) -> bool:
        return self.geometry.size[2] == 1

    @property
    def is_cine(self) -> bool:
        """Frames in time (no patient positions), not slices through the body."""
        return bool(self.metadata.get("frames_are_time")) and self.geometry.size[2] > 1

    @property
    def is_planar(self) -> bool:
        """Shown as one image plane (a 2D image or a cine loop), measured in areas, not volumes."""
        return self.is_2d or self.is_cine

    @property
    def spacing(self) -> np.ndarray:
        return self.geometry.spacing

    @property
    def origin(self) -> np.ndarray:
        return self.geometry.origin

    @property
    def direction(self) -> np.ndarray:
        return self.geometry.direction

    def value_range(self) -> tuple[float, float]:
        return float(np.min(self.array)), float(np.max(self.array))

    def default_window(self) -> WindowPreset:
        """The file's first window, else the 1st-99th percentile range (robust for MR/US)."""
        if self.window_presets:
            return self.window_presets[0]
        sample = self.array[..., :3] if self.is_color else self.array
        flat = sample.reshape(-1)
        if flat.size > 1_000_000:
            flat = flat[:: flat.size // 1_000_000]
        lo, hi = np.percentile(flat, [1, 99]).astype(float)
        if hi <= lo:
            lo, hi = float(flat.min()), float(flat.max()) + 1.0
        return WindowPreset("auto", (lo + hi) / 2, hi - lo)

    def describe(self) -> dict:
        lo, hi = self.value_range()
        return {
            "description": self.description,
            "source": self.source,
            "modality": self.modality,
            "dtype": str(self.array.dtype),
            "channels": int(self.array.shape[3]) if self.is_color else 1,
            "value_range": [lo, hi],
            **self.geometry.describe(),
            "window_presets": [[w.name, w.center, w.width] for w in self.window_presets],
            "warnings": list(self.warnings),
            "spacing_known": self.spacing_known,
            "orientation_known": self.orientation_known,
            "frame_time_ms": self.frame_time_ms,
        }
