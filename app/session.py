"""The open case, without Qt: image and label map (through the viewer model, which also holds what
the views show), the edit history, locked segments, the last model run and its probabilities, case
uncertainty, surfaces hidden in 3D, where the image came from and the review state. Panels observe
it through typed events; handlers may unsubscribe. It changes only through its methods, so every
change is announced once (ITK-SNAP's GUI model, napari's ViewerModel)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from core import editing
from core.errors import DelineateError
from core.labels import LabelMap
from core.measurements import from_rows
from core.viewer_model import ViewerModel
from core.volume import Volume


# -- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageOpened:
    """A new image replaced the old one (everything derived from the old one is gone)."""
    volume: Volume
    source: str
    preview: bool = False  # a first slice shown while the rest loads


@dataclass(frozen=True)
class LabelsReplaced:
    """A new label map (a model's output, a loaded file, a store case) or none."""
    labelmap: Optional[LabelMap]


@dataclass(frozen=True)
class LabelsEdited:
    """Voxels of the label map changed in place (an edit, its undo or redo)."""
    edit: editing.Edit
    values: tuple[int, ...]  # the labels whose voxels changed
    how: str = "edit"  # "edit", "undo" or "redo": the status bar says which


@dataclass(frozen=True)
class HistoryChanged:
    can_undo: bool
    can_redo: bool


@dataclass(frozen=True)
class ModelRan:
    """A model segmented this image; its probabilities are kept for explanations."""
    run: Any  # inference.runner.Segmentation


@dataclass(frozen=True)
class InteractiveChanged:
    """The object being built from prompts changed (None: no object under construction)."""
    mask: Optional[np.ndarray]  # bool (z, y, x) on the image's grid
    prompts: Any  # inference.interactive.prompts.Prompts
    seconds: float = 0.0  # the engine's latency for the last prompt


@dataclass(frozen=True)
class GuardChecked:
    """The out-of-distribution guard's reasons for the last run (empty: inside the model's envelope)."""
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class UncertaintyChanged:
    case: Optional[float]


@dataclass(frozen=True)
class LocksChanged:
    locked: frozenset


@dataclass(frozen=True)
class SurfacesChanged:
    hidden: frozenset  # label values whose 3D surface is hidden


@dataclass(frozen=True)
class MeasurementsChanged:
    """Rulers, angles, ROIs or RECIST axes were added or removed (core.measurements.Measurement)."""
    measurements: tuple


@dataclass(frozen=True)
class ReviewSaved:
    case_id: str
    n: int
    state: str


class Subscription:
    """What ``subscribe`` returns: call ``cancel()`` to stop receiving the event."""

    def __init__(self, bus: "EventBus", kind: type, fn: Callable) -> None:
        self._bus, self._kind, self._fn = bus, kind, fn

    def cancel(self) -> None:
        handlers = self._bus._handlers[self._kind]
        if self._fn in handlers:
            handlers.remove(self._fn)


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable]] = defaultdict(list)

    def subscribe(self, kind: type, fn: Callable) -> Subscription:
        self._handlers[kind].append(fn)
        return Subscription(self, kind, fn)

    def emit(self, event) -> None:
        for fn in list(self._handlers[type(event)]):
            fn(event)


# -- the session ----------------------------------------------------------------------------------
class CaseSession:
    def __init__(self, viewer: Optional[ViewerModel] = None) -> None:
        self.viewer = viewer or ViewerModel()
        self.events = EventBus()
        self.source = ""  # path the image came from ("" for a store case)
        self.previewing = False  # the image is a first slice shown while the series loads
        self.run = None  # the last model run on this image (inference.runner.Segmentation)
        self.run_time_point: Optional[int] = None  # of a series over time, the time point that run segmented
        self.warnings: tuple[str, ...] = ()  # why that run may be outside what its model was made for
        self.uncertainty: Optional[float] = None  # case uncertainty from the last uncertainty map
        self.history: Optional[editing.History] = None
        self.locked: set[int] = set()
        self.hidden_surfaces: set[int] = set()
        self.store_case: Optional[str] = None  # the store case this image was opened from
        self.stored_ai: Optional[LabelMap] = None  # that case's AI mask: still the AI draft when re-saved
        self.review_state: Optional[str] = None  # of the last save in this session
        self.interactions: list[dict] = []  # objects accepted from prompts (provenance of the correction)
        self.measurements: list = []  # core.measurements.Measurement, in LPS mm (app.actions.measuring)
        self._clean: tuple = (None, 0, None, ())  # edit_mark() when the mask was put up or last saved
        self._saved_history = None  # the history of the mask the last save in this session stored

    def subscribe(self, kind: type, fn: Callable) -> Subscription:
        return self.events.subscribe(kind, fn)

    # -- what is open ----------------------------------------------------------------------------
    @property
    def volume(self) -> Optional[Volume]:
        return self.viewer.volume

    @property
    def labelmap(self) -> Optional[LabelMap]:
        return self.viewer.labelmap

    def set_image(self, volume: Volume, source: str = "", preview: bool = False,
                  store_case: Optional[str] = None) -> None:
        """Show ``volume``; a full image after its own preview keeps the crosshair where it was."""
        keep = self.previewing and not preview
        self.previewing = preview
        if not preview:
            self.source = str(source)
        self.store_case, self.stored_ai = store_case, None
        self.run, self.uncertainty, self.history, self.review_state = None, None, None, None
        self.run_time_point = None
        self.locked, self.hidden_surfaces, had_warnings, self.warnings = set(), set(), bool(self.warnings), ()
        self.interactions = []
        had_measurements, self.measurements = bool(self.measurements), []
        self._clean, self._saved_history = (None, 0, None, ()), None
        self.viewer.set_volume(volume, keep_cursor=keep)
        self.events.emit(ImageOpened(volume, self.source, preview))
        if had_measurements:
            self.events.emit(MeasurementsChanged(()))
        if had_warnings:
            self.events.emit(GuardChecked(()))

    def clear_preview(self) -> None:
        """A load failed or was cancelled: drop the first slice it showed."""
        if self.previewing:
            self.previewing = False
            self.viewer.clear()

    def set_labelmap(self, labelmap: Optional[LabelMap], unsaved: bool = False) -> None:
        """Raises GeometryError if ``labelmap`` is not on the image's grid. ``unsaved``: it holds
        corrections the store does not have (edits restored after a crash)."""
        if self.volume is None:
            raise DelineateError("open an image first")
        self.viewer.check_grid(labelmap)
        self.stored_ai = None  # another segmentation replaces the store case's: its AI mask no longer applies
        self.history = editing.History(labelmap) if labelmap is not None else None
        # a draft put up is no correction yet; restored edits are (no count of edits matches -1)
        self._clean = (self.history, -1 if unsaved else 0, None, self._clean[3])
        self.locked = {v for v in self.locked if labelmap is not None and labelmap.table.get(v) is not None}
        self.viewer.set_labelmap(labelmap)
        self.events.emit(LabelsReplaced(labelmap))
        self._history_changed()

    def open_store_case(self, image: Volume, ai: Optional[LabelMap], corrected: LabelMap, case_id: str) -> None:
        """A case from the store: its latest corrected mask to go on editing, its measurements, and
        its AI mask kept as the AI draft, so a re-save stores the model's mask (and Dice against it)
        rather than the previous correction as "AI"."""
        self.set_image(image, "", store_case=case_id)
        self.set_labelmap(corrected)
        if ai is not None and ai.geometry.same_grid(image.geometry):
            self.stored_ai = ai
        # its measurements come back with it, as saved: not unsaved work, and kept by the next save
        self.measurements = from_rows(image.metadata.get("store_measurements"))
        self._clean = self._clean[:3] + (tuple(self.measurements),)
        if self.measurements:
            self.events.emit(MeasurementsChanged(tuple(self.measurements)))

    def set_run(self, run, warnings=(), time_point: Optional[int] = None) -> bool:
        """A model's segmentation of this image becomes the label map to correct; ``warnings``: the
        out-of-distribution guard's reasons (app.actions.guard). ``time_point``: of a series over
        time, the one the model segmented; a run that lands after the viewer stepped on takes the
        viewer back to it, as a mask belongs with the voxels it was made from. True: it went back."""
        if self.volume is None or run.labels.geometry is not self.volume.geometry:
            return False  # another image was opened while the model ran
        from core.time_series import show_time_point

        went_back = time_point is not None and show_time_point(self.viewer, time_point)
        self.run, self.warnings, self.run_time_point = run, tuple(warnings), time_point
        self.set_labelmap(run.labels)
        self.events.emit(ModelRan(run))
        self.events.emit(GuardChecked(self.warnings))
        return went_back

    def set_uncertainty(self, case: Optional[float]) -> None:
        if case != self.uncertainty:
            self.uncertainty = case
            self.events.emit(UncertaintyChanged(case))

    def set_locked(self, value: int, locked: bool) -> None:
        if locked != (value in self.locked):
            (self.locked.add if locked else self.locked.discard)(value)
            self.events.emit(LocksChanged(frozenset(self.locked)))

    def set_surface_visible(self, value: int, visible: bool) -> None:
        if visible == (value in self.hidden_surfaces):
            (self.hidden_surfaces.discard if visible else self.hidden_surfaces.add)(value)
            self.events.emit(SurfacesChanged(frozenset(self.hidden_surfaces)))

    def mark_saved(self, case_id: str, n: int, state: str, mark: Optional[tuple] = None) -> None:
        """The store has the case as ``mark`` (an ``edit_mark()`` taken when the save was asked for:
        edits made while it was written are still unsaved; default: as it is now)."""
        mark = mark or self.edit_mark()
        self._clean, self._saved_history = mark, mark[0]
        self.review_state = state
        self.store_case = case_id
        self.events.emit(ReviewSaved(case_id, n, state))

    # -- what the store does not have yet ------------------------------------------------------
    def edit_mark(self) -> tuple:
        """(history, edits done, the last of them, measurements) of the mask on screen."""
        done = self.history.done if self.history else []
        return (self.history, len(done), done[-1] if done else None, tuple(self.measurements))

    def has_unsaved_edits(self) -> bool:
        """Whether the physician's work would be lost if the case closed now: edits (painted,
        accepted from prompts, an effect, a segment deleted) or measurements since the mask was put
        up or last saved. An untouched model draft or loaded file is not work; undoing back to the
        saved mask is no change."""
        if self.labelmap is None:
            return False
        now, clean = self.edit_mark(), self._clean
        if clean[0] is not now[0]:  # saved before another mask was put up: count from the new one
            clean = (now[0], 0, None, clean[3])
        # the last edit by identity: an undo and another edit leave the count as it was
        return now[1] != clean[1] or now[2] is not clean[2] or now[3] != clean[3]

    def mask_saved(self) -> bool:
        """Whether the mask on screen was saved in this session (whatever was edited since)."""
        return self.history is not None and self._saved_history is self.history

    # -- editing ---------------------------------------------------------------------------------
    def apply(self, edit: Optional[editing.Edit], write: bool = False, redraw: bool = True) -> None:
        """Record an edit already made in the label map (``write``: copy its ``after`` in first, for
        an edit computed on a copy in a worker) as one undo step; ``redraw=False`` when the views
        already show it (a brush stroke draws as it goes)."""
        if edit is None or self.history is None:
            return
        if write:
            self.labelmap.array[edit.box] = edit.after
        self.history.push(edit)
        self._edited(edit, redraw)

    def undo(self) -> None:
        if self.history is not None and (e := self.history.undo()) is not None:
            self._edited(e, how="undo")

    def redo(self) -> None:
        if self.history is not None and (e := self.history.redo()) is not None:
            self._edited(e, how="redo")

    def _edited(self, edit: editing.Edit, redraw: bool = True, how: str = "edit") -> None:
        changed = edit.before != edit.after  # only these labels' surfaces need rebuilding
        values = set(np.unique(np.concatenate([edit.before[changed], edit.after[changed]])).tolist())
        values.discard(0)
        lm = self.labelmap
        missing = [v for v in values if lm.table.get(int(v)) is None and (lm.array[edit.box] == v).any()]
        if redraw:
            self.viewer.labels_changed(edit.box)
        if missing:  # voxels of a value the table does not list came back: list it
            lm.table = lm.table.completed_for(missing)
            self.viewer.notify("segments")
        elif edit.removed and how != "edit":  # History put a deleted segment's entry back, or dropped it again
            self.viewer.notify("segments")
        self.events.emit(LabelsEdited(edit, tuple(sorted(int(v) for v in values)), how))
        self._history_changed()

    def _history_changed(self) -> None:
        h = self.history
        self.events.emit(HistoryChanged(bool(h and h.done), bool(h and h.undone)))

    def table_changed(self) -> None:
        """Segments were added, removed or renamed (the label table, not the voxels)."""
        self.viewer.notify("segments")

    # -- what the AI proposed ------------------------------------------------------------------
    def ai_draft(self, current: Optional[LabelMap] = None, copy=LabelMap.copy) -> Optional[LabelMap]:
        """The model's mask for this image (a store case's stored AI mask when no model ran since);
        else the label map as it was before this session's edits (a loaded file); the label map
        itself when nothing was edited. ``current``: a snapshot of the label map to undo the edits on
        (copied by ``copy``) instead of the map itself (app.actions.review's save request)."""
        lm = self.labelmap
        if self.run is not None and self.run.labels is not lm:
            return self.run.labels  # a model run's output is never edited in place
        if self.run is None and self.stored_ai is not None:
            return self.stored_ai
        return self._undone(lm if current is None else current, copy)

    def _undone(self, lm: Optional[LabelMap], copy) -> Optional[LabelMap]:
        if lm is None or self.history is None or not self.history.done:
            return lm
        ai = copy(lm)
        for e in reversed(self.history.done):
            ai.array[e.box] = e.before
        return ai
