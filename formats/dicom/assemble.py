"""Stack geometry: sort frames along the slice normal and find what makes a stack unclean.

Unclean stacks load correctly with a warning (gantry tilt -> in-plane shift per slice; missing
slices or uneven spacing -> linear resampling onto a uniform grid) or are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy import ndimage

from core.errors import FormatError
from core.geometry import Geometry
from formats.dicom.frames import FrameRef


@dataclass
class StackPlan:
    frames: list[FrameRef]  # sorted along the normal
    geometry: Geometry  # the clean output grid
    positions: np.ndarray  # each frame's distance along the normal from the first (mm)
    shifts: Optional[np.ndarray] = None  # per-frame in-plane shift (rows, cols) in pixels: tilt
    targets: Optional[np.ndarray] = None  # output slice positions when resampling is needed
    warnings: list[str] = field(default_factory=list)


def plan_stack(frames: list[FrameRef], source: str) -> StackPlan:
    f0 = frames[0]
    row, col = f0.orientation[:3], f0.orientation[3:]
    if abs(np.dot(row, col)) > 1e-3 or abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3:
        raise FormatError(source, f"ImageOrientationPatient {f0.orientation.tolist()} is not two orthonormal vectors")
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    normal = np.cross(row, col)
    if f0.pixel_spacing is None:
        warnings = ["no PixelSpacing in the header: 1 mm pixels assumed, measurements are not in mm"]
        sy, sx = 1.0, 1.0
    else:
        warnings = []
        sy, sx = f0.pixel_spacing
    depth = np.array([float(np.dot(f.position, normal)) for f in frames])
    order = np.argsort(depth, kind="stable")
    frames = [frames[i] for i in order]
    depth = depth[order]
    rel = depth - depth[0]
    if len(frames) > 1 and np.min(np.diff(rel)) < 1e-3:
        dup = int(np.sum(np.diff(rel) < 1e-3))
        raise FormatError(source, f"{dup + 1} images share a slice position and nothing in the headers "
                                  f"separates them into stacks; refused rather than mixing them")
    origin = frames[0].position
    shifts = None
    if len(frames) > 1:
        offsets = np.array([f.position - origin for f in frames])
        tangential = offsets - np.outer(offsets @ normal, normal)
        tmax = float(np.max(np.linalg.norm(tangential, axis=1)))
        if tmax > 1e-3 * max(1.0, float(rel[-1])) and tmax > 0.01:
            angle = np.degrees(np.arctan2(tmax, rel[-1]))
            shifts = np.stack([tangential @ col / sy, tangential @ row / sx], axis=1)
            warnings.append(f"slices are sheared (gantry tilt {angle:.1f} degrees): resampled onto a "
                            f"grid orthogonal to the slices")
    targets = None
    if len(frames) > 2:
        gaps = np.diff(rel)
        step = float(np.min(gaps))  # the true step when slices are missing; no resolution lost otherwise
        if np.max(np.abs(gaps - step)) > max(0.01 * step, 1e-3):
            n_out = int(round(rel[-1] / step)) + 1
            targets = np.arange(n_out) * step
            ratios = gaps / step
            missing = int(np.sum(np.round(ratios) - 1)) if np.allclose(ratios, np.round(ratios), atol=0.05) else 0
            if n_out > 1.5 * len(frames):
                raise FormatError(source, f"not a contiguous volume: {len(frames)} images span {n_out} slice "
                                          f"positions {step:.4g} mm apart; interpolating the "
                                          f"{n_out - len(frames)} missing ones would invent most of the image")
            if missing:
                warnings.append(f"{missing} slice(s) missing from the series: gaps filled by linear "
                                f"interpolation onto a uniform {step:.4g} mm grid")
            else:
                warnings.append(f"uneven slice spacing ({gaps.min():.4g} to {gaps.max():.4g} mm): "
                                f"resampled by linear interpolation onto a uniform {step:.4g} mm grid")
        sz = step
    elif len(frames) == 2:
        sz = float(rel[1])
    else:
        sz = float(f0.thickness or 1.0)
    n = len(targets) if targets is not None else len(frames)
    geom = Geometry((f0.columns, f0.rows, n), (sx, sy, sz), origin, np.stack([row, col, normal], axis=1))
    return StackPlan(frames, geom, rel, shifts, targets, warnings)


def apply_shift(slice_: np.ndarray, shift) -> np.ndarray:
    """Shift one slice in-plane (rows, cols) by linear interpolation, for gantry-tilt correction."""
    if not np.any(np.abs(shift) > 1e-6):
        return slice_
    fill = float(slice_.min())
    out = ndimage.shift(slice_.astype(np.float32), tuple(shift) + (0,) * (slice_.ndim - 2), order=1,
                        mode="constant", cval=fill)
    return out.astype(slice_.dtype) if np.issubdtype(slice_.dtype, np.floating) else np.round(out).astype(slice_.dtype)


def resample_positions(stack: np.ndarray, positions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 from ``positions`` to uniform ``targets`` (mm)."""
    out = np.empty((len(targets),) + stack.shape[1:], dtype=np.float32)
    idx = np.clip(np.searchsorted(positions, targets, side="right") - 1, 0, len(positions) - 2)
    for o, (k, t) in enumerate(zip(idx, targets)):
        w = (t - positions[k]) / (positions[k + 1] - positions[k])
        w = min(max(w, 0.0), 1.0)
        out[o] = (1 - w) * stack[k] + w * stack[k + 1]
    if np.issubdtype(stack.dtype, np.integer):
        return np.round(out).astype(stack.dtype)
    return out.astype(stack.dtype)
