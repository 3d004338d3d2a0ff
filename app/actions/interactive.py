"""Interactive segmentation through the session: prompts build one object, shown live; Accept writes
it into a segment as one undo step (respecting locks); the prompts it took are kept for the
correction's provenance.

The GUI (and tests) drive it in three steps so the engine never runs on the UI thread::

    obj = InteractiveObject(session, engine="auto")
    prompts = obj.prompts.add(Point(lps, positive=True))
    mask, seconds = obj.compute(prompts, cancel)      # in a worker: pure, touches nothing shared
    obj.show(prompts, mask, seconds)                  # on the UI thread: announces InteractiveChanged

A newer prompt supersedes a stale one: ``show`` drops a result whose prompts are not the newest
asked for (``obj.asked``). ``segment_file`` is the CLI's whole path (image, prompts file -> mask).
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from app.session import InteractiveChanged
from core import editing
from core.errors import DelineateError
from inference.interactive.engine import make_engine
from inference.interactive.prompts import Prompts, rasterise


class InteractiveObject:
    """The object under construction on the session's image."""

    def __init__(self, session, engine: str = "auto", device=None) -> None:
        if session.volume is None:
            raise DelineateError("open an image first")
        self.session = session
        self.engine_name = engine
        self._engine = make_engine(engine, device)
        self._state = None
        self._volume = None
        self.prompts = Prompts()
        self.mask: Optional[np.ndarray] = None
        self.asked: Optional[Prompts] = None
        self._stack: list[tuple[Prompts, Optional[np.ndarray]]] = []  # for undo of the last prompt

    @property
    def engine(self) -> str:
        return getattr(self._engine, "name", self.engine_name)

    def compute(self, prompts: Prompts, cancel=None) -> tuple[np.ndarray, float]:
        """The object for ``prompts`` (refining the current mask); safe to run in a worker."""
        vol = self.session.volume
        rasterise(prompts, vol.geometry)  # bad prompts fail here with a PromptError naming them
        t = time.perf_counter()
        if self._state is None or self._volume is not vol:
            self._state, self._volume = self._engine.open(vol), vol
        mask = np.asarray(self._state.predict(prompts, self.mask, cancel=cancel), dtype=bool)
        if mask.shape != vol.array.shape[:3]:
            raise DelineateError(f"engine '{self.engine}' returned a mask of shape {mask.shape}, "
                                 f"not the image's {vol.array.shape[:3]}")
        return mask, time.perf_counter() - t

    def ask(self, prompts: Prompts) -> Prompts:
        """Note ``prompts`` as the newest request (results for older ones are dropped)."""
        self.asked = prompts
        return prompts

    def show(self, prompts: Prompts, mask: np.ndarray, seconds: float = 0.0) -> bool:
        """Make ``mask`` the object (False, and nothing shown, if newer prompts were asked since)."""
        if self.asked is not None and prompts is not self.asked:
            return False
        self._stack.append((self.prompts, self.mask))
        self.prompts, self.mask = prompts, mask
        self.session.events.emit(InteractiveChanged(mask, prompts, seconds))
        return True

    def undo_prompt(self) -> None:
        if self._stack:
            self.prompts, self.mask = self._stack.pop()
            self.asked = None
            self.session.events.emit(InteractiveChanged(self.mask, self.prompts))

    def new_object(self) -> None:
        self._stack.clear()
        self.prompts, self.mask, self.asked = Prompts(), None, None
        self.session.events.emit(InteractiveChanged(None, self.prompts))

    def accept(self, value: int, replace: bool = False) -> Optional[editing.Edit]:
        """Write the object into segment ``value`` as one undo step; locked segments keep their
        voxels. ``replace``: the segment becomes the object (its voxels outside it are cleared)
        instead of gaining it. Starts a new object. Returns the edit (None if nothing changed)."""
        s = self.session
        if self.mask is None or s.labelmap is None:
            return None
        lm, value = s.labelmap, int(value)
        if replace:
            new = np.where(self.mask, value, np.where(lm.array == value, 0, lm.array))
            edit = editing.apply(lm, "interactive", new, self.mask | (lm.array == value), s.locked)
        else:
            edit = editing.apply(lm, "interactive", value, self.mask, s.locked)
        if edit is not None:
            s.apply(edit)
            s.interactions.append({"engine": self.engine, "segment": value, **self.prompts.counts(),
                                   "prompts": len(self.prompts)})
        self.new_object()
        return edit


def segment_file(image, prompts_path, out, previous=None, engine: str = "auto", device=None,
                 progress=None, cancel=None) -> dict:
    """``main.py interactive``: read IMAGE, answer the prompts file (LPS mm), write a binary label
    map on IMAGE's exact grid to OUT. Returns a summary (engine, voxels, ml, seconds)."""
    raise NotImplementedError("filled in by the interactive CLI work (issue 18)")
