"""Measurements a reader makes on the image: ruler, angle, elliptic ROI with intensity statistics,
and RECIST long/short axes of a segment. Points are patient LPS millimetres, so every length,
angle and area is exact on oblique and anisotropic grids (nothing is measured in pixels).

Point conventions per kind:
- ruler:   (a, b)
- angle:   (a, vertex, c)
- ellipse: (centre, end of the first semi-axis, end of the second semi-axis)
- recist:  (long axis a, long axis b, short axis a, short axis b)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.errors import DelineateError
from core.geometry import Geometry
from core.labels import LabelMap
from core.volume import Volume, luminance

KINDS = {"ruler": 2, "angle": 3, "ellipse": 3, "recist": 4}


@dataclass(frozen=True)
class Measurement:
    kind: str
    points: tuple  # LPS mm, one (x, y, z) per point
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DelineateError(f"unknown measurement {self.kind!r}; one of {', '.join(KINDS)}")
        pts = np.asarray(self.points, dtype=np.float64)
        if pts.shape != (KINDS[self.kind], 3) or not np.all(np.isfinite(pts)):
            raise DelineateError(f"a {self.kind} needs {KINDS[self.kind]} finite LPS points, got {self.points!r}")
        object.__setattr__(self, "points", tuple(tuple(float(v) for v in p) for p in pts))

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.points, dtype=np.float64)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "label": self.label, "points_lps_mm": [list(p) for p in self.points]}

    @classmethod
    def from_dict(cls, d: dict) -> "Measurement":
        return cls(d["kind"], tuple(tuple(p) for p in d["points_lps_mm"]), d.get("label", ""))


def distance_mm(a, b) -> float:
    return float(np.linalg.norm(np.asarray(b, np.float64) - np.asarray(a, np.float64)))


def angle_deg(a, vertex, c) -> float:
    u = np.asarray(a, np.float64) - vertex
    v = np.asarray(c, np.float64) - vertex
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(u @ v / (nu * nv), -1.0, 1.0))))


def ellipse_axes(points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre and the two semi-axis vectors (the second made perpendicular to the first)."""
    c, pu, pv = np.asarray(points, np.float64)
    u, v = pu - c, pv - c
    nu = u @ u
    if nu > 0:
        v = v - (v @ u) / nu * u
    return c, u, v


def ellipse_voxels(geometry: Geometry, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(k, j, i) index arrays of the voxels the ellipse covers: centre inside the ellipse once
    projected on its plane, and within the voxel's own half-thickness of that plane (on a slice of
    an axis-aligned image: that slice's voxels whose centres lie inside)."""
    c, u, v = ellipse_axes(points)
    a, b = np.linalg.norm(u), np.linalg.norm(v)
    if a == 0 or b == 0:
        return (np.zeros(0, int),) * 3
    n = np.cross(u, v) / (a * b)
    corners = c + np.array([su * u + sv * v for su in (-1, 1) for sv in (-1, 1)])
    ijk = geometry.world_to_index(corners)
    size = np.asarray(geometry.size)
    lo = np.clip(np.floor(ijk.min(0)) - 1, 0, size - 1).astype(int)
    hi = np.clip(np.ceil(ijk.max(0)) + 1, 0, size - 1).astype(int)
    if np.any(ijk.max(0) < -0.5) or np.any(ijk.min(0) > size - 0.5):
        return (np.zeros(0, int),) * 3
    ii, jj, kk = np.meshgrid(*(np.arange(lo[d], hi[d] + 1) for d in range(3)), indexing="ij")
    idx = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
    d = geometry.index_to_world(idx) - c
    half = 0.5 * np.sum(np.abs(n @ geometry.direction) * geometry.spacing)  # voxel half-thickness along n
    dn = d @ n
    inside = (dn >= -half) & (dn < half) & ((d @ u / a ** 2) ** 2 + (d @ v / b ** 2) ** 2 <= 1 + 1e-9)
    sel = idx[inside]
    return sel[:, 2], sel[:, 1], sel[:, 0]


def values(m: Measurement, volume: Optional[Volume] = None) -> dict:
    """What the measurement reads: length_mm, angle_deg, area_mm2 and ROI statistics (mean, sd, min,
    max in the image's units, HU on CT; of the luminance on a colour image, ``of`` says so), or
    RECIST long_mm/short_mm."""
    out = _values(m, volume)
    if volume is not None and not volume.spacing_known:  # 1 mm pixels stand in for an unknown size
        out["in_pixels"] = True
    return out


def _values(m: Measurement, volume: Optional[Volume]) -> dict:
    p = m.array
    if m.kind == "ruler":
        return {"length_mm": distance_mm(p[0], p[1])}
    if m.kind == "angle":
        return {"angle_deg": angle_deg(p[0], p[1], p[2])}
    if m.kind == "recist":
        return {"long_mm": distance_mm(p[0], p[1]), "short_mm": distance_mm(p[2], p[3])}
    _c, u, v = ellipse_axes(p)
    out = {"area_mm2": float(np.pi * np.linalg.norm(u) * np.linalg.norm(v)),
           "axes_mm": [2 * float(np.linalg.norm(u)), 2 * float(np.linalg.norm(v))]}
    if volume is not None:
        k, j, i = ellipse_voxels(volume.geometry, p)
        vals = volume.array[k, j, i].astype(np.float64)
        if volume.is_color:  # an RGB ultrasound: what a grey screen would show of it
            vals, out["of"] = luminance(vals), "luminance"
        out["voxels"] = int(vals.size)
        out["unit"] = "HU" if volume.modality == "CT" else ""
        if vals.size:
            out.update(mean=float(vals.mean()), sd=float(vals.std()), min=float(vals.min()), max=float(vals.max()))
    return out


def text(m: Measurement, vals: dict) -> str:
    """The value as the overlay and the list show it (in pixels when the file gives no pixel size)."""
    mm = "px" if vals.get("in_pixels") else "mm"
    if m.kind == "ruler":
        return f"{vals['length_mm']:.1f} {mm}"
    if m.kind == "angle":
        return f"{vals['angle_deg']:.1f}°"
    if m.kind == "recist":
        return f"{m.label + ': ' if m.label else ''}{vals['long_mm']:.1f} × {vals['short_mm']:.1f} {mm}"
    area = vals["area_mm2"]
    s = f"{area:.0f} px²" if vals.get("in_pixels") else f"{area / 100:.2f} cm²" if area >= 100 else f"{area:.1f} mm²"
    if "mean" in vals:
        u = f" {vals['unit']}" if vals.get("unit") else ""
        s += f"\n{vals['of']} " if vals.get("of") else "\n"
        s += f"mean {vals['mean']:.1f} ± {vals['sd']:.1f}{u}\nmin {vals['min']:g}  max {vals['max']:g}"
    return s


def from_rows(rows) -> list[Measurement]:
    """Measurements back from the rows ``row`` wrote (a store record, a statistics JSON); a row that
    is not one (damaged, or a kind this version does not know) is left out, not fatal."""
    out = []
    for r in rows or ():
        try:
            out.append(Measurement.from_dict(r))
        except (DelineateError, KeyError, TypeError, ValueError):
            continue
    return out


def row(m: Measurement, volume: Optional[Volume] = None) -> dict:
    """One measurement as the statistics export, the report and the store record keep it."""
    return dict(m.to_dict(), **values(m, volume), text=text(m, values(m, volume)).replace("\n", "; "))


# -- RECIST ---------------------------------------------------------------------------------------
def recist(labelmap: LabelMap, value: int) -> Optional[Measurement]:
    """RECIST axes of segment ``value``: on the image slice (index axis k, the acquisition plane)
    where the segment's area is largest, its longest diameter and the longest diameter perpendicular
    to it, between voxel centres (so within a voxel of the true extents). None if it is empty."""
    arr = labelmap.array == value
    per_slice = arr.reshape(arr.shape[0], -1).sum(1)
    if not per_slice.any():
        return None
    k = int(np.argmax(per_slice))
    g = labelmap.geometry
    jj, ii = np.nonzero(arr[k])
    xy = np.c_[ii * g.spacing[0], jj * g.spacing[1]]  # in-plane mm (isometric: direction is orthonormal)
    hull = _hull(xy)
    d = np.linalg.norm(hull[:, None] - hull[None], axis=2)
    a, b = np.unravel_index(int(np.argmax(d)), d.shape)
    e = hull[b] - hull[a]
    if not e.any():
        e = np.array([1.0, 0.0])
    e = e / np.linalg.norm(e)
    f = np.array([-e[1], e[0]])
    t, s = xy @ e, xy @ f
    bins = np.round(t / min(g.spacing[0], g.spacing[1])).astype(int)
    order = np.argsort(bins, kind="stable")
    uniq, start = np.unique(bins[order], return_index=True)
    smin = np.minimum.reduceat(s[order], start)
    smax = np.maximum.reduceat(s[order], start)
    best = int(np.argmax(smax - smin))
    members = order[start[best]:(start[best + 1] if best + 1 < len(start) else len(order))]
    t0 = float(t[members].mean())
    short = np.array([t0 * e + smin[best] * f, t0 * e + smax[best] * f])
    pts2d = np.vstack([hull[[a, b]], short])
    ijk = np.c_[pts2d[:, 0] / g.spacing[0], pts2d[:, 1] / g.spacing[1], np.full(4, k)]
    lab = labelmap.table.get(value)
    return Measurement("recist", tuple(map(tuple, g.index_to_world(ijk))), lab.name if lab is not None else str(value))


def _hull(xy: np.ndarray) -> np.ndarray:
    """The convex hull's vertices (all points when there are too few for a hull)."""
    if len(xy) < 4:
        return xy
    from scipy.spatial import ConvexHull, QhullError

    try:
        return xy[ConvexHull(xy).vertices]
    except QhullError:  # collinear: a one-voxel-wide segment
        return xy[[int(np.argmin(xy @ (xy[-1] - xy[0]))), int(np.argmax(xy @ (xy[-1] - xy[0])))]]


MEASUREMENT_COLUMNS = ("kind", "label", "text", "length_mm", "angle_deg", "long_mm", "short_mm", "area_mm2",
                       "voxels", "mean", "sd", "min", "max", "unit", "of", "points_lps_mm")


def measurements_csv(rows: list[dict]) -> str:
    """Rows of ``row`` as CSV (points as "x y z; x y z" in LPS mm)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MEASUREMENT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(dict(r, points_lps_mm="; ".join(" ".join(f"{v:g}" for v in p) for p in r["points_lps_mm"])))
    return buf.getvalue()
