"""Editing the label map through the session, so every change is one undo step and announced once:
brush strokes (round dabs in mm along the mouse path, on the slice or as spheres, optionally only
within an intensity range), new and deleted segments, and whole-segment operations (holes,
islands, grow/shrink, smoothing, slice interpolation, hollow, hole filling on one slice, grow from
seeds, logical operations) computed on a copy in a worker, and the effects drawn on a view (level
tracing, scissors) applied at once. Each returns its Edit; ``report`` says in one line what it
changed (or that nothing did, and why). The voxel operations themselves are core.editing and
core.editor_effects."""
from __future__ import annotations

from typing import Optional

import numpy as np

from core import editing
from core import editor_effects as fx
from core.labels import Label, LabelMap, LabelTable, distinct_color

# name -> fn(labelmap, value, amount (mm, or ml for islands: see core.planar.island_ml), locked) -> Edit or None
OPERATIONS = {
    "Fill holes": lambda lm, v, a, lk: editing.fill_holes(lm, v, lk),
    "Keep largest": lambda lm, v, a, lk: editing.remove_islands(lm, v, None, lk),
    "Remove islands": lambda lm, v, a, lk: editing.remove_islands(lm, v, a, lk),
    "Grow by mm": lambda lm, v, a, lk: fx.margin(lm, v, a, lk),
    "Shrink by mm": lambda lm, v, a, lk: fx.margin(lm, v, -a, lk),
    "Smooth (mm)": lambda lm, v, a, lk: editing.smooth(lm, v, a, lk),
    "Interpolate slices": lambda lm, v, a, lk: editing.interpolate_slices(lm, v, 0, lk),
    "Hollow (mm)": lambda lm, v, a, lk: fx.hollow(lm, v, a, "inside", lk),
}

# why an operation may change nothing, said instead of silence
_NOTHING = {
    "Fill holes": "no hole enclosed in 3D (a contour drawn on one slice encloses nothing in 3D: "
                  "use Fill holes (slice))",
    "Fill holes (slice)": "no hole on this slice",
    "Interpolate slices": "needs the segment drawn on two slices with undrawn slices between them",
    "Keep largest": "it is one piece already",
    "Remove islands": "no piece that small",
    "Grow from seeds": "no background left to grow into",
    "Paint": "painted there already, locked, or outside the intensity range",
    "Erase": "none of it under the brush",
}


def report(name: str, edit: Optional[editing.Edit], lm: Optional[LabelMap], value: Optional[int] = None,
           where: str = "") -> str:
    """One status-bar line: what ``name`` changed (voxels, slices of the image, per segment), or that
    it changed nothing and why."""
    seg = ""
    if value is not None and lm is not None:
        lab = lm.table.get(int(value))
        seg = f" in {lab.name if lab else f'segment {value}'}"
    if edit is None:
        why = _NOTHING.get(name, "")
        return f"{name}: nothing changed{seg}{where}" + (f" — {why}" if why else "")
    if edit.name.startswith("grow from seeds ("):  # which method the box's size chose
        where += f" by {edit.name[len('grow from seeds ('):-1]}"
    voxels, slices = fx.changed_counts(edit, axis=0)
    if voxels == 0 and edit.removed:  # an empty segment deleted (or brought back)
        return f"{name}: {', '.join(lab.name for lab in edit.removed)} (no voxels)"
    parts = []
    for v, d in sorted(edit.summary().items()):
        lab = lm.table.get(v) if lm is not None else None
        lab = lab or next((r for r in edit.removed if r.value == v), None)  # a deleted segment's name
        text = " ".join(f"{sign}{n}" for sign, n in (("+", d["added"]), ("−", d["removed"])) if n)
        parts.append(f"{lab.name if lab else v} {text}")
    return (f"{name}{where}: {voxels} voxel{'s' if voxels != 1 else ''} changed on {slices} image "
            f"slice{'s' if slices != 1 else ''} ({', '.join(parts)})")


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


def delete_segment(session, value: int) -> Optional[editing.Edit]:
    """Clear a segment's voxels and drop it from the table, as one undo step (undo lists it again
    as it was, even an empty one); the Edit, or None without a segmentation."""
    lm = session.labelmap
    if lm is None or session.history is None:
        return
    lab = lm.table.get(int(value))
    edit = editing.apply(lm, "delete", 0, lm.array == int(value)) or editing.Edit.nothing("delete", lm)
    edit.removed = (lab,) if lab is not None else ()
    lm.table = lm.table.without([value])
    session.apply(edit)
    session.table_changed()
    return edit


def operation(work: LabelMap, name: str, value: int, amount: float, locked=frozenset()):
    """Run a whole-segment operation on ``work`` (a copy: the views keep drawing the real map);
    apply the returned Edit with ``session.apply(edit, write=True)``."""
    return OPERATIONS[name](work, int(value), float(amount), set(locked))


def fill_holes_slice(work: LabelMap, value: int, plane_axis: int, index: int, locked=frozenset()):
    """Fill the holes of ``value`` on one slice of ``work`` (a copy, as ``operation``)."""
    return fx.fill_holes_2d(work, int(value), plane_axis, int(index), set(locked))


def grow_from_seeds(work: LabelMap, image: np.ndarray, locked=frozenset()):
    """Grow every unlocked segment with voxels into the background around them (core.editor_effects)."""
    if image.ndim == 4:  # colour: grow on brightness
        image = image.mean(axis=-1)
    return fx.grow_from_seeds(work, image, None, set(locked))


def logical(work: LabelMap, op: str, target: int, other: Optional[int], locked=frozenset()):
    return fx.logical(work, op, int(target), None if other is None else int(other), set(locked))


def slice_through(session, view: str, display_ijk) -> tuple[int, int]:
    """The label map's plane axis closest to ``view``'s slices and the index of its slice through
    the display point ``display_ijk`` (x, y, z)."""
    axis = plane_axis_for(session, view)
    ijk = session.labelmap.geometry.world_to_index(session.viewer.display.grid.index_to_world(
        np.asarray(display_ijk, dtype=np.float64)))
    return axis, int(np.rint(ijk[axis]))


def level_trace(session, view: str, display_ijk, value: int) -> Optional[editing.Edit]:
    """Level tracing at a click on ``view``: the region inside the iso-intensity outline through the
    clicked voxel, on the label map's slice nearest the view's, painted as one undo step."""
    lm, vol = session.labelmap, session.volume
    if lm is None or vol is None or session.history is None:
        return None
    image = vol.array.mean(axis=-1) if vol.is_color else vol.array
    ijk = lm.geometry.world_to_index(session.viewer.display.grid.index_to_world(np.asarray(display_ijk, float)))
    edit = fx.level_trace(lm, image, ijk, int(value), plane_axis_for(session, view), session.locked)
    session.apply(edit)
    return edit


def scissors(session, view: str, display_points, mode: str, value: int, through: bool) -> Optional[editing.Edit]:
    """Cut along a shape drawn on ``view`` (display indices (N, 3) on its slice): ``mode`` one of
    core.editor_effects.SCISSORS, through the volume or on the shown slice only; one undo step."""
    lm = session.labelmap
    if lm is None or session.history is None:
        return None
    d = session.viewer.display
    axis = d.sliced_axis(view)
    lps = d.grid.index_to_world(np.asarray(display_points, dtype=np.float64))
    normal = d.grid.direction[:, axis]
    edit = fx.scissors(lm, lps, normal, mode, int(value), None if through else float(d.grid.spacing[axis]),
                       session.locked)
    session.apply(edit)
    return edit


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
