"""Editing a label map: every operation returns a sparse Edit (bounding box, before, after), so
undo/redo is unlimited and cheap, and the store can say exactly which voxels a physician changed.

Operations never write into locked segments (their voxels keep their label) and work in index
space with sizes given in millimetres, converted through the label map's spacing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.labels import Label, LabelMap

Box = tuple[slice, slice, slice]


@dataclass(eq=False)
class Edit:
    """What one operation changed: the voxels in ``box`` went from ``before`` to ``after``."""

    name: str
    box: Box
    before: np.ndarray
    after: np.ndarray
    # label-table entries the edit dropped (Delete segment): undo lists them again as they were
    # (name, colour, code), not as default "Label n" entries; redo drops them again
    removed: tuple[Label, ...] = ()

    @classmethod
    def nothing(cls, name: str, lm: LabelMap) -> "Edit":
        """An edit of no voxels (a segment list change alone: deleting an empty segment)."""
        empty = lm.array[:0, :0, :0].copy()
        return cls(name, (slice(0, 0),) * 3, empty, empty.copy())

    def inverse(self) -> "Edit":
        """What undoing this edit changes (after back to before), for saying so."""
        return Edit(self.name, self.box, self.after, self.before, self.removed)

    @property
    def nbytes(self) -> int:
        return self.before.nbytes + self.after.nbytes

    def summary(self) -> dict[int, dict[str, int]]:
        """Voxels added and removed per label."""
        changed = self.before != self.after
        out: dict[int, dict[str, int]] = {}
        for v in np.unique(np.concatenate([self.after[changed], self.before[changed]])):
            v = int(v)
            if v == 0:
                continue
            out[v] = {"added": int(np.sum((self.after == v) & changed)),
                      "removed": int(np.sum((self.before == v) & changed))}
        return out


def bounding_box(mask: np.ndarray) -> Optional[Box]:
    """The smallest (z, y, x) box holding every True voxel, or None."""
    if not mask.any():
        return None
    out = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def apply(lm: LabelMap, name: str, new: np.ndarray, where: np.ndarray, locked: set[int] = frozenset(),
          offset: Box = None) -> Optional[Edit]:
    """Write ``new`` (scalar or array) where ``where`` holds, except over locked labels. ``where``
    may cover a sub-box ``offset`` of the map. Returns the Edit, or None if nothing changed."""
    box0 = offset or tuple(slice(0, n) for n in lm.array.shape)
    region = lm.array[box0]
    target = np.broadcast_to(np.asarray(new, dtype=lm.array.dtype), region.shape)
    write = where & (region != target)
    if locked:
        write &= ~np.isin(region, list(locked))
    box = bounding_box(write)
    if box is None:
        return None
    sub = region[box]
    before = sub.copy()
    w = write[box]
    sub[w] = target[box][w]
    full = tuple(slice(b0.start + b.start, b0.start + b.stop) for b0, b in zip(box0, box))
    return Edit(name, full, before, sub.copy())


class History:
    """Unlimited undo/redo of Edits on one label map."""

    def __init__(self, lm: LabelMap) -> None:
        self.lm = lm
        self.done: list[Edit] = []
        self.undone: list[Edit] = []

    def push(self, edit: Optional[Edit]) -> Optional[Edit]:
        if edit is not None:
            self.done.append(edit)
            self.undone.clear()
        return edit

    def undo(self) -> Optional[Edit]:
        if not self.done:
            return None
        e = self.done.pop()
        self.lm.array[e.box] = e.before
        for lab in e.removed:
            self.lm.table = self.lm.table.with_label(lab)
        self.undone.append(e)
        return e

    def redo(self) -> Optional[Edit]:
        if not self.undone:
            return None
        e = self.undone.pop()
        self.lm.array[e.box] = e.after
        if e.removed:
            self.lm.table = self.lm.table.without(lab.value for lab in e.removed)
        self.done.append(e)
        return e

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.done) + sum(e.nbytes for e in self.undone)

    def summary(self) -> dict[int, dict[str, int]]:
        """Net voxels added/removed per label over everything done so far."""
        total: dict[int, dict[str, int]] = {}
        for e in self.done:
            for v, d in e.summary().items():
                t = total.setdefault(v, {"added": 0, "removed": 0})
                t["added"] += d["added"]
                t["removed"] += d["removed"]
        return total


# -- tools --------------------------------------------------------------------------------------------
def _ball(lm: LabelMap, centre_ijk, radius_mm: float, plane_axis: Optional[int]):
    """Sub-box and mask of a sphere (or a disc in the plane normal to index axis ``plane_axis``)."""
    sp = lm.geometry.spacing  # (x, y, z)
    c = np.asarray(centre_ijk, dtype=np.float64)
    r_vox = radius_mm / sp
    lo = np.floor(c - r_vox).astype(int)
    hi = np.ceil(c + r_vox).astype(int) + 1
    if plane_axis is not None:
        lo[plane_axis] = int(round(c[plane_axis]))
        hi[plane_axis] = lo[plane_axis] + 1
    size = np.asarray(lm.geometry.size)
    lo, hi = np.clip(lo, 0, size), np.clip(hi, 0, size)
    if np.any(hi <= lo):
        return None, None
    i, j, k = (np.arange(lo[a], hi[a]) for a in range(3))
    dz = ((k - c[2]) * sp[2])[:, None, None]
    dy = ((j - c[1]) * sp[1])[None, :, None]
    dx = ((i - c[0]) * sp[0])[None, None, :]
    if plane_axis is not None:
        d = [dx, dy, dz]
        d[plane_axis] = 0 * d[plane_axis]
        dx, dy, dz = d
    mask = dx ** 2 + dy ** 2 + dz ** 2 <= radius_mm ** 2 + 1e-9
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return box, mask


def brush(lm: LabelMap, centre_ijk, radius_mm: float, value: int, plane_axis: Optional[int] = None,
          image: Optional[np.ndarray] = None, intensity_range: Optional[tuple[float, float]] = None,
          locked: set[int] = frozenset(), erase: bool = False) -> Optional[Edit]:
    """Paint ``value`` (or erase it to 0) in a sphere, or a disc in the slice normal to
    ``plane_axis`` (index axis: 0 = x / sagittal, 1 = y / coronal, 2 = z / axial). With
    ``intensity_range``, only where the image lies within it (threshold painting)."""
    box, mask = _ball(lm, centre_ijk, radius_mm, plane_axis)
    if box is None:
        return None
    if intensity_range is not None and image is not None:
        lo, hi = intensity_range
        sub = image[box]
        mask &= (sub >= lo) & (sub <= hi)
    if erase:
        mask &= lm.array[box] == value
        return apply(lm, "erase", 0, mask, locked, box)
    return apply(lm, "paint", value, mask, locked, box)


def flood_fill(lm: LabelMap, seed_ijk, value: int, image: np.ndarray, tolerance: float,
               plane_axis: Optional[int] = None, locked: set[int] = frozenset()) -> Optional[Edit]:
    """Region grow from a click: connected voxels whose intensity is within ``tolerance`` of the seed's."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    i, j, k = (int(round(v)) for v in seed_ijk)
    seed_value = float(image[k, j, i])
    similar = np.abs(image.astype(np.float32) - seed_value) <= tolerance
    if plane_axis is not None:
        keep = np.zeros_like(similar)
        sl = [slice(None)] * 3
        sl[2 - plane_axis] = [k, j, i][2 - plane_axis]
        keep[tuple(sl)] = similar[tuple(sl)]
        similar = keep
    comp, _n = ndimage.label(similar)
    region = comp == comp[k, j, i]
    return apply(lm, "fill", value, region, locked)


def fill_holes(lm: LabelMap, value: int, locked: set[int] = frozenset()) -> Optional[Edit]:
    from scipy import ndimage  # imported here: the window should not wait for scipy

    mask = lm.array == value
    box = bounding_box(mask)
    if box is None:
        return None
    filled = ndimage.binary_fill_holes(mask[box])
    return apply(lm, "fill holes", value, filled & ~mask[box], locked, box)


def remove_islands(lm: LabelMap, value: int, min_ml: Optional[float] = None,
                   locked: set[int] = frozenset()) -> Optional[Edit]:
    """Keep only the largest connected piece of ``value`` (``min_ml`` None), or remove pieces
    smaller than ``min_ml`` millilitres."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    mask = lm.array == value
    comp, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    if min_ml is None:
        keep = comp == int(np.argmax(sizes))
    else:
        min_vox = min_ml / lm.geometry.voxel_volume_ml()
        keep = np.isin(comp, np.flatnonzero(sizes >= min_vox)) & mask
    return apply(lm, "islands", 0, mask & ~keep, locked)


def _structure(lm: LabelMap, mm: float):
    r = np.maximum(np.round(mm / lm.geometry.spacing[::-1]).astype(int), 0)  # (z, y, x) voxels
    z, y, x = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    sp = lm.geometry.spacing[::-1]
    return (z * sp[0]) ** 2 + (y * sp[1]) ** 2 + (x * sp[2]) ** 2 <= mm ** 2 + 1e-9


def grow_shrink(lm: LabelMap, value: int, mm: float, locked: set[int] = frozenset()) -> Optional[Edit]:
    """Morphological grow (mm > 0, into background only) or shrink (mm < 0) by an ellipsoidal
    structuring element of that radius in millimetres."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    mask = lm.array == value
    se = _structure(lm, abs(mm))
    if mm > 0:
        grown = ndimage.binary_dilation(mask, se)
        return apply(lm, "grow", value, grown & ~mask & (lm.array == 0), locked)
    shrunk = ndimage.binary_erosion(mask, se)
    return apply(lm, "shrink", 0, mask & ~shrunk, locked)


def smooth(lm: LabelMap, value: int, mm: float = 1.0, locked: set[int] = frozenset()) -> Optional[Edit]:
    """Morphological opening then closing: removes spurs and fills notches smaller than ``mm``."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    mask = lm.array == value
    se = _structure(lm, mm)
    smoothed = ndimage.binary_closing(ndimage.binary_opening(mask, se), se)
    removed = apply(lm, "smooth", 0, mask & ~smoothed, locked)
    added = apply(lm, "smooth", value, smoothed & ~mask & (lm.array == 0), locked)
    return merge(lm, "smooth", [removed, added])


def union_box(boxes) -> Box:
    """The smallest box holding every non-empty one of ``boxes``: an edit of no voxels (deleting an
    empty segment, ``Edit.nothing``) has an empty box at the origin, which would stretch the union to
    index 0 on every axis. Only empty ones: an empty box."""
    boxes = [b for b in boxes if all(s.stop > s.start for s in b)]
    if not boxes:
        return (slice(0, 0),) * 3
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(3))


def merge(lm: LabelMap, name: str, edits: list[Edit]) -> Optional[Edit]:
    """Edits just applied in order to ``lm``, as one undo step (a brush stroke made of dabs)."""
    edits = [e for e in edits if e is not None]
    if not edits:
        return None
    box = union_box([e.box for e in edits])
    after = lm.array[box].copy()
    before = after.copy()
    for e in reversed(edits):  # undoing them in reverse order gives the state before the first
        local = tuple(slice(eb.start - b.start, eb.stop - b.start) for eb, b in zip(e.box, box))
        before[local] = e.before
    return Edit(name, box, before, after)


def interpolate_slices(lm: LabelMap, value: int, axis: int = 0, locked: set[int] = frozenset()) -> Optional[Edit]:
    """Fill the slices between slices where ``value`` was drawn (array axis ``axis``, 0 = k) by
    shape-based interpolation: linear blending of the signed distance maps of the two nearest drawn
    slices (Raya & Udupa 1990), measured in mm. Only background voxels are filled."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    mask = lm.array == value
    drawn = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
    if drawn.size < 2:
        return None
    sampling = [s for a, s in enumerate(lm.geometry.spacing[::-1]) if a != axis]  # (z, y, x) spacing in-plane

    def signed(k):
        m = np.take(mask, k, axis=axis)
        return ndimage.distance_transform_edt(m, sampling) - ndimage.distance_transform_edt(~m, sampling)

    fill = np.zeros_like(mask)
    for a, b in zip(drawn[:-1], drawn[1:]):
        if b - a < 2:
            continue
        da, db = signed(a), signed(b)
        for k in range(a + 1, b):
            t = (k - a) / (b - a)
            sl = [slice(None)] * 3
            sl[axis] = k
            fill[tuple(sl)] = (1 - t) * da + t * db > 0
    return apply(lm, "interpolate", value, fill & (lm.array == 0), locked)
