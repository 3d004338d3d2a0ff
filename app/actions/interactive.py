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
from inference.interactive.prompts import PromptError, Prompts, rasterise


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


OBJECT_LABEL = (1, "Object", (255, 160, 40))  # the value, name and colour OUT's one label gets


def segment_file(image, prompts_path, out, previous=None, engine: str = "auto", device=None,
                 progress=None, cancel=None, series=None) -> dict:
    """``main.py interactive``: read IMAGE, answer the prompts file (LPS mm), write a binary label
    map on IMAGE's exact grid to OUT. ``previous``: a label map on IMAGE's grid whose non-zero
    voxels are the object to refine. Returns a summary (engine, voxels, ml, seconds, prompts).
    Bad prompts, files or grids raise a DelineateError naming the file and the problem, before
    anything is written."""
    from app.actions import opening
    from core.labels import Label, LabelMap, LabelTable
    from core.progress import check, no_progress
    from formats.io import kind_of, read_labelmap, write_labelmap

    progress = progress or no_progress
    if kind_of(out) == "dicom":  # refused before the work, not after it
        raise DelineateError(f"{out}: write the mask as .nii/.nii.gz, .nrrd, .mha or .png "
                             "(DICOM SEG: the export command)")
    prompts = Prompts.load(prompts_path)
    progress(0.0, "reading the image")
    vol = opening.read(str(image), series, progress=lambda f, m="": progress(0.4 * f, m), cancel=cancel)
    try:
        rasterise(prompts, vol.geometry)
    except PromptError as e:
        raise PromptError(f"{prompts_path}: {e}") from None
    prev = None
    if previous is not None:
        prev = read_labelmap(previous, reference=vol).array > 0
    check(cancel)
    progress(0.45, "starting the engine")
    eng = make_engine(engine, device)
    t = time.perf_counter()
    mask = np.asarray(eng.open(vol).predict(prompts, prev, cancel=cancel), dtype=bool)
    seconds = time.perf_counter() - t
    progress(0.95, "writing the mask")
    value, name, colour = OBJECT_LABEL
    table = LabelTable((Label(value, name, colour),))
    write_labelmap(LabelMap(mask.astype(np.uint8) * value, vol.geometry, table), out)
    progress(1.0, "done")
    voxels = int(mask.sum())
    return {"engine": getattr(eng, "name", engine), "voxels": voxels, "ml": voxels * vol.geometry.voxel_volume_ml(),
            "seconds": seconds, **prompts.counts()}
