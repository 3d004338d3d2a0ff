"""Prompts for interactive segmentation, in patient LPS millimetres, and their rasterisation onto
an image's grid (any orientation, oblique and anisotropic grids included; 2D images are one slice).

Every engine sees the same rasterised prompts, so a click means the same voxel whichever engine
answers it. Array order is (z, y, x) as everywhere in Delineate; indices are (i, j, k) = (x, y, z).

JSON form (any key may be absent)::

    {"points": [{"lps": [x, y, z], "positive": true}],
     "boxes": [{"lps_min": [x, y, z], "lps_max": [x, y, z]}],
     "scribbles": [{"lps": [[x, y, z], ...], "positive": true}],
     "lassos": [{"lps": [[x, y, z], ...]}]}

A box is given by two opposite corners; on the image's grid it spans the index range between
them, one slice thick along the axis where they coincide (a box drawn on one slice). A lasso is
a closed polygon drawn on one slice; it fills that slice's polygon.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from core.errors import DelineateError
from core.geometry import Geometry

Vec = tuple[float, float, float]


class PromptError(DelineateError):
    """A prompt is malformed, empty or outside the image; the message says which and why."""


@dataclass(frozen=True)
class Point:
    lps: Vec
    positive: bool = True


@dataclass(frozen=True)
class Box:
    lps_min: Vec
    lps_max: Vec


@dataclass(frozen=True)
class Scribble:
    lps: tuple[Vec, ...]
    positive: bool = True


@dataclass(frozen=True)
class Lasso:
    lps: tuple[Vec, ...]
    positive: bool = True


Prompt = Union[Point, Box, Scribble, Lasso]


@dataclass(frozen=True)
class Prompts:
    """All prompts given so far for one object, in the order given (the last one is the newest)."""

    items: tuple[Prompt, ...] = field(default_factory=tuple)

    def add(self, prompt: Prompt) -> "Prompts":
        return Prompts(self.items + (prompt,))

    def without_last(self) -> "Prompts":
        return Prompts(self.items[:-1])

    def __len__(self) -> int:
        return len(self.items)

    def counts(self) -> dict[str, int]:
        """How many of each kind (provenance: how many interactions an object took)."""
        out = {"points": 0, "boxes": 0, "scribbles": 0, "lassos": 0}
        for p in self.items:
            out[_KEY[type(p)]] += 1
        return out

    def to_json(self) -> dict:
        out: dict[str, list] = {}
        for p in self.items:
            key = _KEY[type(p)]
            if isinstance(p, Point):
                d = {"lps": list(p.lps), "positive": p.positive}
            elif isinstance(p, Box):
                d = {"lps_min": list(p.lps_min), "lps_max": list(p.lps_max)}
            else:
                d = {"lps": [list(v) for v in p.lps], "positive": p.positive}
            out.setdefault(key, []).append(d)
        return out

    @classmethod
    def from_json(cls, data, where: str = "prompts") -> "Prompts":
        if not isinstance(data, dict):
            raise PromptError(f"{where}: expected a JSON object with points/boxes/scribbles/lassos")
        unknown = set(data) - set(_KEY.values())
        if unknown:
            raise PromptError(f"{where}: unknown key(s) {sorted(unknown)}; expected points, boxes, scribbles, lassos")
        items: list[Prompt] = []
        for key, kind in (("points", Point), ("boxes", Box), ("scribbles", Scribble), ("lassos", Lasso)):
            entries = data.get(key, [])
            if not isinstance(entries, list):
                raise PromptError(f"{where}: '{key}' must be a list")
            for n, e in enumerate(entries):
                at = f"{where}: {key}[{n}]"
                if not isinstance(e, dict):
                    raise PromptError(f"{at} must be an object")
                positive = e.get("positive", True)
                if not isinstance(positive, bool):
                    raise PromptError(f"{at}: 'positive' must be true or false")
                if kind is Point:
                    items.append(Point(_vec(e.get("lps"), at), positive))
                elif kind is Box:
                    items.append(Box(_vec(e.get("lps_min"), at + ".lps_min"), _vec(e.get("lps_max"), at + ".lps_max")))
                else:
                    pts = e.get("lps")
                    if not isinstance(pts, list) or len(pts) < (3 if kind is Lasso else 1):
                        need = "at least 3 points" if kind is Lasso else "at least 1 point"
                        raise PromptError(f"{at}: 'lps' must be a list of {need}")
                    items.append(kind(tuple(_vec(v, at) for v in pts), positive))
        if not items:
            raise PromptError(f"{where}: no prompts (give at least one point, box, scribble or lasso)")
        return cls(tuple(items))

    @classmethod
    def load(cls, path) -> "Prompts":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as e:
            raise PromptError(f"{path}: cannot read ({e.strerror or e})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PromptError(f"{path}: not valid JSON ({e})") from None
        return cls.from_json(data, str(path))


_KEY = {Point: "points", Box: "boxes", Scribble: "scribbles", Lasso: "lassos"}


def _vec(v, where: str) -> Vec:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise PromptError(f"{where}: expected [x, y, z] in LPS mm, got {v!r}")
    return (float(a[0]), float(a[1]), float(a[2]))


@dataclass
class Rasterised:
    """Prompts on an image's grid: boolean (z, y, x) masks of positive and negative prompts, and
    the voxel bounding box (zyx slices) of every prompt together (where the object must be)."""

    positive: np.ndarray
    negative: np.ndarray
    box: Optional[tuple[slice, slice, slice]]
    box_mask: np.ndarray  # union of the boxes and lassos (the object lies inside when given)


def to_index(geometry: Geometry, lps, where: str = "prompt") -> np.ndarray:
    """LPS mm to continuous (i, j, k); a point more than half a voxel outside the grid is an error."""
    ijk = geometry.world_to_index(np.asarray(lps, dtype=np.float64))
    size = np.asarray(geometry.size, dtype=np.float64)
    pts = ijk.reshape(-1, 3)
    bad = np.any((pts < -0.5) | (pts > size - 0.5), axis=1)
    if np.any(bad):
        p = np.asarray(lps, dtype=np.float64).reshape(-1, 3)[int(np.argmax(bad))]
        raise PromptError(f"{where}: LPS ({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f}) mm lies outside the image")
    return ijk


def _voxel(ijk, size) -> tuple[int, int, int]:
    i, j, k = (int(np.clip(np.rint(c), 0, n - 1)) for c, n in zip(ijk, size))
    return k, j, i  # (z, y, x)


def _ball(mask: np.ndarray, centre_zyx, radius_vox: int) -> None:
    z, y, x = centre_zyx
    r = radius_vox
    sl = tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, n in zip((z, y, x), mask.shape))
    zz, yy, xx = np.ogrid[sl]
    mask[sl] |= (zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= r * r


def _line(mask: np.ndarray, a_ijk, b_ijk, size, radius_vox: int) -> None:
    n = int(np.ceil(np.max(np.abs(np.asarray(b_ijk) - np.asarray(a_ijk))))) + 1
    for t in np.linspace(0.0, 1.0, max(n, 1) + 1):
        _ball(mask, _voxel(np.asarray(a_ijk) + t * (np.asarray(b_ijk) - np.asarray(a_ijk)), size), radius_vox)


def _flat_axis(ijk: np.ndarray, where: str) -> int:
    """The index axis the points of a box or lasso share (the slice they were drawn on)."""
    spread = np.ptp(ijk, axis=0)
    axis = int(np.argmin(spread))
    if spread[axis] > 0.5 + 1e-6:
        raise PromptError(f"{where}: must be drawn on one slice of the image (its points span "
                          f"{spread[axis]:.1f} slices along every axis)")
    return axis


def _polygon(mask: np.ndarray, ijk: np.ndarray, axis: int, size) -> None:
    from matplotlib.path import Path as Poly  # matplotlib is a pyqtgraph/nilearn dependency already

    rest = [a for a in range(3) if a != axis]
    s = int(np.clip(np.rint(np.median(ijk[:, axis])), 0, size[axis] - 1))
    u, v = np.meshgrid(np.arange(size[rest[0]]), np.arange(size[rest[1]]), indexing="ij")
    inside = Poly(ijk[:, rest]).contains_points(np.c_[u.ravel(), v.ravel()], radius=1e-9).reshape(u.shape)
    full = np.zeros(tuple(size), bool)  # (i, j, k)
    idx: list = [slice(None)] * 3
    idx[axis] = s
    full[tuple(idx)] = inside
    mask |= full.transpose(2, 1, 0)
    for p in ijk:  # the outline itself, so thin lassos are never empty
        mask[_voxel(p, size)] = True


def rasterise(prompts: Prompts, geometry: Geometry, point_radius_vox: int = 1) -> Rasterised:
    """Prompts on ``geometry``'s grid; raises PromptError naming the first prompt that is outside
    the image or not drawn on one slice."""
    size = geometry.size
    shape = geometry.shape_zyx
    pos, neg, boxes = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool)
    for n, p in enumerate(prompts.items):
        where = f"{_KEY[type(p)][:-1] if not isinstance(p, Box) else 'box'} {n + 1}"
        if isinstance(p, Point):
            _ball(pos if p.positive else neg, _voxel(to_index(geometry, p.lps, where), size), point_radius_vox)
        elif isinstance(p, Box):
            ijk = to_index(geometry, [p.lps_min, p.lps_max], where)
            lo = np.clip(np.rint(ijk.min(axis=0)), 0, np.asarray(size) - 1).astype(int)
            hi = np.clip(np.rint(ijk.max(axis=0)), 0, np.asarray(size) - 1).astype(int)
            boxes[lo[2]:hi[2] + 1, lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = True
        elif isinstance(p, Scribble):
            ijk = to_index(geometry, p.lps, where).reshape(-1, 3)
            target = pos if p.positive else neg
            for a, b in zip(ijk, ijk[1:] if len(ijk) > 1 else ijk):
                _line(target, a, b, size, point_radius_vox)
        else:
            ijk = to_index(geometry, p.lps, where).reshape(-1, 3)
            region = np.zeros(shape, bool)
            _polygon(region, ijk, _flat_axis(ijk, where) if geometry.size[2] > 1 else 2, size)
            if p.positive:
                boxes |= region
            else:
                neg |= region
    pos |= boxes
    any_ = pos | neg
    box = None
    if any_.any():
        idx = [np.flatnonzero(any_.any(axis=tuple(a for a in range(3) if a != d))) for d in range(3)]
        box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)
    return Rasterised(pos, neg, box, boxes)
