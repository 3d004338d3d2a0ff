"""The Interactive tool's behaviour on the slice views: mouse gestures become prompts in LPS mm, each
prompt's object is computed in the worker (app.actions.interactive.InteractiveObject), the newest
one is shown on every view, and Accept writes it into a segment as one undo step.

Gestures (as Slicer's and ITK-SNAP's nnInteractive tools): a left click is a positive point, a right
click or Ctrl+click a negative one, in every mode; a left drag draws the mode's shape (box, lasso,
scribble; Ctrl+drag: a negative lasso or scribble). Boxes and lassos are snapped onto the image's
own slice nearest the view's plane, so they are drawn on one slice of oblique images too.

Prompts are computed one at a time (the engine is not shared between threads); a newer prompt
cancels the one being computed, and results for anything older than the newest request are dropped.
"""
from __future__ import annotations

import threading
from typing import Optional

import numpy as np
from PySide6 import QtCore

from app.actions.interactive import InteractiveObject
from app.session import CaseSession, ImageOpened, InteractiveChanged
from core.errors import Cancelled, DelineateError
from core.planar import size_text
from core.progress import check
from inference.interactive.prompts import Box, Lasso, Point, Prompt, Prompts, Scribble

MODES = ("point", "box", "lasso", "scribble")
_CLICK_VOXELS = 1.5  # a drag shorter than this (display voxels) is a click


class InteractiveTool(QtCore.QObject):
    changed = QtCore.Signal()  # the object, its prompts, the engine or the busy state changed
    failed = QtCore.Signal(str)  # one line: why a prompt or an accept did not work

    def __init__(self, session: CaseSession, shell, parent=None) -> None:
        super().__init__(parent)
        self.session, self.shell = session, shell
        self.engine_name = "auto"
        self.mode = "point"
        self.active = False
        self.obj: Optional[InteractiveObject] = None
        self.overlays: dict = {}
        self.last_seconds: Optional[float] = None
        self.views: dict = {}
        self._lock = threading.Lock()  # one engine call at a time
        self._asked = 0  # generation of the newest request
        self._started = 0  # generation of the newest worker started
        self._ended = 0  # newest generation whose worker has ended (written in the worker)
        self._delivered = 0  # newest generation whose outcome reached the UI thread
        self._newest: Optional[Prompts] = None  # prompts of the newest request
        self._drag: Optional[tuple[str, list, bool]] = None  # view, display points, negative
        session.subscribe(InteractiveChanged, self._on_changed)
        session.subscribe(ImageOpened, lambda _e: self.reset())

    # -- wiring ---------------------------------------------------------------------------------
    def attach(self, views: dict) -> None:
        """Draw on these slice views (name -> SliceView) and take their right clicks while active."""
        from gui.interactive_overlay import InteractiveOverlay

        self.views = views
        self.overlays = {name: InteractiveOverlay(view) for name, view in views.items()}

    def set_active(self, on: bool) -> None:
        self.active = on
        for view in self.views.values():
            view.right_handler = self.on_right if on else None

    def set_engine(self, name: str) -> None:
        """Another engine answers from now on; the prompts so far are asked of it again."""
        if name == self.engine_name:
            return
        prompts = self.prompts
        self.engine_name = name
        self._drop_object()
        if len(prompts):
            self.request(prompts)

    @property
    def prompts(self) -> Prompts:
        """The newest prompts: asked (maybe still computing) or shown."""
        if self._newest is not None:
            return self._newest
        return self.obj.prompts if self.obj is not None else Prompts()

    @property
    def busy(self) -> bool:
        """A prompt's object is being computed (not yet shown)."""
        return self._newest is not None

    @property
    def _running(self) -> bool:
        """A task of ours has not ended or not delivered its outcome (a forgotten request's included)."""
        return self._ended < self._started or self._delivered < self._started

    @property
    def has_object(self) -> bool:
        return self.obj is not None and self.obj.mask is not None

    # -- mouse ----------------------------------------------------------------------------------
    def on_view(self, view: str, display_ijk, phase: str) -> None:
        """Left button on a slice view (EditPanel.on_view passes it on while this tool is chosen)."""
        sv = self.views.get(view)
        negative = sv is not None and bool(sv.modifiers & QtCore.Qt.KeyboardModifier.ControlModifier)
        ijk = np.asarray(display_ijk, dtype=np.float64)
        if phase == "click":
            self._drag = None
            self.add(Point(_vec(self._world(ijk)), positive=not negative))
        elif phase == "start":
            self._drag = (view, [ijk], negative)
        elif self._drag is not None and self._drag[0] == view:
            points = self._drag[1]
            if np.max(np.abs(ijk - points[-1])) >= 0.5:
                points.append(ijk)
            if phase == "finish":
                self._finish_drag(view, points, self._drag[2], ijk)
            elif view in self.overlays:
                self.overlays[view].draw_sketch(self._world(np.array(points)), self.mode, self._drag[2])

    def on_right(self, view: str, display_ijk, phase: str) -> None:
        if phase == "click":
            self.add(Point(_vec(self._world(np.asarray(display_ijk, dtype=np.float64))), positive=False))

    def _world(self, display_ijk: np.ndarray) -> np.ndarray:
        return self.session.viewer.display.grid.index_to_world(display_ijk)

    def _finish_drag(self, view: str, points: list, negative: bool, last: np.ndarray) -> None:
        self._drag = None
        if view in self.overlays:
            self.overlays[view].draw_sketch(None, self.mode, negative)
        pts = np.array(points + [last])
        if self.mode == "point" or np.max(np.ptp(pts, axis=0)) < _CLICK_VOXELS:
            self.add(Point(_vec(self._world(pts[0])), positive=not negative))  # a click that moved a little
        elif self.mode == "box":
            a, b = self._on_one_slice(view, pts[[0, -1]])
            self.add(Box(a, b))
        elif self.mode == "lasso":
            self.add(Lasso(tuple(self._on_one_slice(view, pts[:-1] if len(pts) > 3 else pts)),
                           positive=not negative))
        else:
            self.add(Scribble(tuple(_vec(p) for p in self._world(pts)), positive=not negative))

    def _on_one_slice(self, view: str, display_pts: np.ndarray) -> list:
        """LPS points of a box or lasso drawn on ``view``, moved onto the one image slice nearest its
        plane (a no-op unless the image is oblique to the view)."""
        g = self.session.volume.geometry
        d = self.session.viewer.display
        src = g.world_to_index(d.grid.index_to_world(display_pts))
        normal = d.sliced_axis(view)  # display axes are world axes
        axis = int(np.argmax(np.abs(g.direction[normal, :])))
        src[:, axis] = np.clip(np.rint(np.median(src[:, axis])), 0, g.size[axis] - 1)
        return [_vec(p) for p in g.index_to_world(src)]

    # -- prompts --------------------------------------------------------------------------------
    def add(self, prompt: Prompt) -> None:
        if self.session.volume is None:
            return
        self.request(self.prompts.add(prompt))

    def request(self, prompts: Prompts) -> None:
        """Compute the object for ``prompts`` in the worker; supersedes what is being computed."""
        tasks = self.shell.tasks
        if tasks.busy and not self._running:
            self.failed.emit("Interactive: wait for the running task to finish (or cancel it)")
            return
        self._asked += 1
        gen, self._newest = self._asked, prompts
        running, self._started = self._running, gen
        if self.obj is not None:
            self.obj.ask(prompts)
        if tasks.busy and running:
            tasks.cancel()  # ours, computing an older request: it ends at its next check
        name = self.engine_name
        tasks.start(f"Interactive ({name})", lambda _p, cancel, _part: self._compute(gen, name, prompts, cancel),
                    lambda result: self._computed(gen, result), lambda exc: self._failed(gen, exc))
        self._draw_prompts(prompts)  # the markers show at once, the object when it is computed
        self.changed.emit()

    def _compute(self, gen: int, name: str, prompts: Prompts, cancel):
        """In the worker: the engine is made here the first time (a network may take seconds)."""
        try:
            with self._lock:
                check(cancel)
                obj = self.obj
                if obj is None or obj.engine_name != name:
                    obj = InteractiveObject(self.session, name)
                mask, seconds = obj.compute(prompts, cancel)
                return obj, prompts, mask, seconds
        finally:
            self._ended = max(self._ended, gen)

    def _computed(self, gen: int, result) -> None:
        self._delivered = max(self._delivered, gen)
        obj, prompts, mask, seconds = result
        if gen != self._asked:
            return  # a newer prompt, an accept, an undo or another image came since
        self._newest = None
        if self.obj is not obj:
            self.obj = obj
            obj.ask(prompts)
        obj.show(prompts, mask, seconds)
        self.changed.emit()

    def _failed(self, gen: int, exc) -> None:
        self._delivered = max(self._delivered, gen)
        if gen != self._asked:
            return
        self._forget_request()
        if isinstance(exc, Cancelled):
            self.shell.message("Interactive: cancelled")
            return
        if not isinstance(exc, DelineateError):
            from app import logs

            logs.error(exc, "interactive")
        self.failed.emit(f"Interactive ({self.engine_name}): {getattr(exc, 'problem', None) or exc}")

    def _forget_request(self) -> None:
        """The newest request will not be shown (it failed or was taken back): show the object's prompts."""
        self._newest = None
        if self.obj is not None:
            self.obj.ask(self.obj.prompts)
        self._draw_prompts(self.prompts)
        self.changed.emit()

    def _draw_prompts(self, prompts: Prompts) -> None:
        for overlay in self.overlays.values():
            overlay.show(overlay.display_mask, prompts)

    def _on_changed(self, event: InteractiveChanged) -> None:
        d = self.session.viewer.display
        shown = None
        if event.mask is not None and d is not None and event.mask.any():
            shown = d.to_display(event.mask.view(np.uint8), order=0)
        for overlay in self.overlays.values():
            overlay.show(shown, event.prompts)
        if event.seconds:
            self.last_seconds = event.seconds
            self.shell.message(f"Interactive ({self.obj.engine if self.obj else self.engine_name}): "
                               f"{event.seconds:.2f} s", 15000)

    # -- object ---------------------------------------------------------------------------------
    def undo_prompt(self) -> bool:
        """Take back the newest prompt; False when there is none (Ctrl+Z then undoes an edit)."""
        if self._newest is not None:  # still computing: forget it
            self._asked += 1
            self._forget_request()
            return True
        if self.obj is None or not len(self.obj.prompts):
            return False
        self.obj.undo_prompt()
        self.changed.emit()
        return True

    def new_object(self) -> None:
        self._asked += 1
        self._newest = None
        if self.obj is not None:
            self.obj.new_object()
        else:
            self.session.events.emit(InteractiveChanged(None, Prompts()))
        self.changed.emit()

    def accept(self, value: int, replace: bool = False):
        """Write the object into segment ``value`` (one undo step, locks respected); the edit or None."""
        if not self.has_object:
            return None
        self._asked += 1  # whatever is computing now belongs to the accepted object
        self._newest = None
        voxels = int(self.obj.mask.sum())
        edit = self.obj.accept(value, replace)
        size = size_text(voxels, self.session.volume)
        if edit is None:
            self.failed.emit(f"Interactive: segment {value} did not change (locked, or it already holds the object)")
        else:
            self.shell.message(f"Interactive: object of {size} {'replaced' if replace else 'added to'} "
                               f"segment {value} (Ctrl+Z undoes it)", 15000)
        self.changed.emit()
        return edit

    def _drop_object(self) -> None:
        self._asked += 1
        self._newest = None
        self.obj = None
        self.session.events.emit(InteractiveChanged(None, Prompts()))
        self.changed.emit()

    def reset(self) -> None:
        """A new image: the object, its engine state and the prompts are gone."""
        self._drop_object()


def _vec(p) -> tuple[float, float, float]:
    return (float(p[0]), float(p[1]), float(p[2]))
