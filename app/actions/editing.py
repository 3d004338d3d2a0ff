"""Editing the label map through the session, so every change is one undo step and announced once:
brush strokes (round dabs in mm along the mouse path, on the slice or as spheres, optionally only
within an intensity range), new and deleted segments, and whole-segment operations (holes,
islands, grow/shrink, smoothing, slice interpolation) computed on a copy in a worker. The voxel
operations themselves are core.editing."""
from __future__ import annotations

from typing import Optional

import numpy as np

from core import editing
from core.labels import Label, LabelMap, LabelTable, distinct_color

# name -> fn(labelmap, value, amount (mm or ml), locked) -> Edit or None
OPERATIONS = {
    "Fill holes": lambda lm, v, a, lk: editing.fill_holes(lm, v, lk),
    "Keep largest": lambda lm, v, a, lk: editing.remove_islands(lm, v, None, lk),
    "Remove islands < ml": lambda lm, v, a, lk: editing.remove_islands(lm, v, a, lk),
    "Grow by mm": lambda lm, v, a, lk: editing.grow_shrink(lm, v, a, lk),
    "Shrink by mm": lambda lm, v, a, lk: editing.grow_shrink(lm, v, -a, lk),
    "Smooth (mm)": lambda lm, v, a, lk: editing.smooth(lm, v, a, lk),
    "Interpolate slices": lambda lm, v, a, lk: editing.interpolate_slices(lm, v, 0, lk),
}


def new_segment(session) -> Optional[int]:
    """Add a segment (an empty segmentation on the image's grid if there is none); its value."""
    vol = session.volume
    if vol is None:
        return None
    lm = session.labelmap
    if lm is None:
        lm = LabelMap.empty_like(vol.geometry, LabelTable())
    value = max([lab.value for lab in lm.table] + [0]) + 1
    lm.table = lm.table.with_label(Label(value, f"Segment {value}", distinct_color(lab.color for lab in lm.table)))
    if session.labelmap is lm:
        session.table_changed()
    else:
        session.set_labelmap(lm)
    return value


def delete_segment(session, value: int) -> None:
    """Clear a segment's voxels (one undo step; undo lists it again) and drop it from the table."""
    lm = session.labelmap
    if lm is None or session.history is None:
        return
    edit = editing.apply(lm, "delete", 0, lm.array == int(value))
    lm.table = type(lm.table)(tuple(lab for lab in lm.table if lab.value != int(value)))
    session.apply(edit)
    session.table_changed()


def operation(work: LabelMap, name: str, value: int, amount: float, locked=frozenset()):
    """Run a whole-segment operation on ``work`` (a copy: the views keep drawing the real map);
    apply the returned Edit with ``session.apply(edit, write=True)``."""
    return OPERATIONS[name](work, int(value), float(amount), set(locked))


def plane_axis_for(session, view: str) -> int:
    """The label map's index axis closest to the normal of the slice ``view`` shows."""
    normal = np.eye(3)[session.viewer.display.sliced_axis(view)]
    return int(np.argmax(np.abs(session.labelmap.geometry.direction.T @ normal)))


class BrushStroke:
    """One drag of the paint or erase brush: a dab every half radius along the path (fast strokes
    leave no gaps), drawn at once, recorded as one undo step when the stroke ends."""

    def __init__(self, session, value: int, radius_mm: float, erase: bool = False, plane_axis: Optional[int] = None,
                 intensity_range=None) -> None:
        self.session, self.value, self.radius = session, int(value), float(radius_mm)
        self.erase, self.plane_axis, self.range = erase, plane_axis, intensity_range
        self._edits: list = []
        self._last = None

    def dab(self, ijk) -> None:
        """Paint at label-map index ``ijk`` (x, y, z; fractional), joined to the previous dab."""
        s = self.session
        lm, vol = s.labelmap, s.volume
        ijk = np.asarray(ijk, float)
        last = ijk if self._last is None else self._last
        step_mm = max(self.radius / 2, 0.25)
        n = max(1, int(np.ceil(float(np.linalg.norm((ijk - last) * lm.geometry.spacing)) / step_mm)))
        image = vol.array if self.range and not vol.is_color else None
        new = []
        for t in np.linspace(0, 1, n + 1)[n if self._last is None else 1:]:
            edit = editing.brush(lm, last + t * (ijk - last), self.radius, self.value, self.plane_axis, image,
                                 self.range, s.locked, erase=self.erase)
            if edit is not None:
                new.append(edit)
        self._last = ijk
        if new:
            self._edits += new
            s.viewer.labels_changed(new[0].box if len(new) == 1 else editing.union_box([e.box for e in new]))

    def finish(self) -> Optional[editing.Edit]:
        """End the stroke: one undo step (None if it changed nothing)."""
        stroke = editing.merge(self.session.labelmap, "erase" if self.erase else "paint", self._edits)
        self._edits, self._last = [], None
        self.session.apply(stroke, redraw=False)
        return stroke
