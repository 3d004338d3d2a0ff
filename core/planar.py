"""2D images and cine loops: which view shows their plane, what it is called, and the units their
sizes are given in (mm and mm²/cm² when the file gives a pixel size, pixels when it does not;
areas, not volumes, for an image plane)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from core.geometry import Geometry
from core.volume import Volume

#: the view stepping through each world axis (x = L, y = P, z = S)
_VIEW_OF_WORLD_AXIS = {0: "sagittal", 1: "coronal", 2: "axial"}


def plane_view(geometry: Geometry) -> str:
    """The view that shows an image plane whole: the one stepping along the index axis k (the frame
    or slice axis), whichever way a file with patient geometry turned the plane."""
    return _VIEW_OF_WORLD_AXIS[int(np.argmax(np.abs(geometry.direction[:, 2])))]


def plane_name(volume: Volume) -> str:
    """The plane's label on screen: "Image" unless the file says which anatomical plane it is."""
    if not volume.orientation_known:
        return "Image"
    return f"Image ({plane_view(volume.geometry)})"


def pixel_area_mm2(geometry: Geometry) -> float:
    return float(geometry.spacing[0] * geometry.spacing[1])


def area_text(pixels: int, volume: Volume) -> str:
    """An area of ``pixels`` image pixels as a reader expects it: cm² from 1 cm² up, mm² below,
    whole pixels when the file gives no pixel size."""
    if not volume.spacing_known:
        return f"{int(pixels)} px²"
    mm2 = pixels * pixel_area_mm2(volume.geometry)
    return f"{mm2 / 100:.2f} cm²" if mm2 >= 100 else f"{mm2:.1f} mm²"


def size_text(voxels: int, volume: Volume) -> str:
    """A count of voxels as a reader reads it: an area on an image plane, else ml (or voxels
    when the file gives no voxel size)."""
    if volume.is_planar:
        return area_text(voxels, volume)
    if not volume.spacing_known:
        return f"{int(voxels)} voxels"
    return f"{voxels * volume.geometry.voxel_volume_ml():.2f} ml"


def size_heading(volume: Optional[Volume], frame: int = 0) -> str:
    """The segment table's size column: a volume in ml, an area, or a count when the grid's size
    is only a placeholder. A loop's area is the shown ``frame``'s (0-based), and the heading names
    it: a segment drawn on another frame reads 0 there."""
    if volume is None:
        return "Volume (ml)"
    if volume.is_planar:
        units = [] if volume.spacing_known else ["px²"]
        units += [f"frame {frame + 1}"] if volume.is_cine else []
        return f"Area ({', '.join(units)})" if units else "Area"
    return "Volume (ml)" if volume.spacing_known else "Voxels"


def segment_sizes(volume: Volume, labels: np.ndarray, values, frame: int = 0) -> dict[int, str]:
    """Each segment's size as the segment table shows it: on a planar image the area on ``frame``
    (the shown one), else the volume in ml (voxels when the spacing is unknown)."""
    if volume.is_planar:
        plane = labels[min(max(frame, 0), labels.shape[0] - 1)]
        counts = np.bincount(plane.ravel(), minlength=max(values, default=0) + 1)
        return {v: area_text(int(counts[v]) if v < counts.size else 0, volume) for v in values}
    counts = np.bincount(labels.ravel(), minlength=max(values, default=0) + 1)
    if not volume.spacing_known:
        return {v: str(int(counts[v]) if v < counts.size else 0) for v in values}
    vml = volume.geometry.voxel_volume_ml()
    return {v: f"{(int(counts[v]) if v < counts.size else 0) * vml:.2f}" for v in values}


def planar_area(volume: Volume, mask: np.ndarray, first_frame: int = 0) -> dict:
    """Area columns of a segment on a planar image: its largest area over the frames (the area
    itself on a one-frame image), in pixels and - when the spacing is known - mm². ``mask`` holds
    frames ``first_frame`` on (a segment's bounding box)."""
    per_frame = mask.reshape(mask.shape[0], -1).sum(1)
    k = int(np.argmax(per_frame)) if per_frame.size else 0
    px = int(per_frame[k]) if per_frame.size else 0
    out = {"area_px": px, "area_mm2": round(px * pixel_area_mm2(volume.geometry), 4) if volume.spacing_known else None}
    if volume.is_cine and px:
        out["area_frame"] = first_frame + k + 1
    return out


def edit_units(volume: Optional[Volume]) -> tuple[str, str]:
    """The edit panel's units: (length, island size). mm and ml on a volume, mm and mm² on an image
    plane, and px with voxel or pixel counts where the file gives no pixel size (there the
    placeholder 1 mm pixels make one px the step the tools take)."""
    if volume is None:
        return "mm", "ml"
    length = "mm" if volume.spacing_known else "px"
    if volume.is_planar:
        return length, "mm²" if volume.spacing_known else "px²"
    return length, "ml" if volume.spacing_known else "voxels"


def island_ml(volume: Optional[Volume], amount: float) -> float:
    """An island size typed in ``edit_units``' unit, as the ml core.editing.remove_islands takes."""
    if volume is None:
        return float(amount)
    unit, vml = edit_units(volume)[1], volume.geometry.voxel_volume_ml()
    if unit == "ml":
        return float(amount)
    if unit == "mm²":
        return float(amount) / pixel_area_mm2(volume.geometry) * vml
    return float(amount) * vml  # a count of pixels or voxels
