"""nnInteractive (MIC-DKFZ) as an optional engine, when its package and weights are on this machine.

Nothing is downloaded: the user installs the ``nnInteractive`` package and puts a trained model
folder (the one ``nnInteractive.model_management.ensure_model_available`` fetches) where the
setting ``DELINEATE_NNINTERACTIVE_WEIGHTS`` points. The package needs its own PyTorch (it pins
a newer one than Delineate's), so it is not among our requirements.

Written against the documented session API (``nnInteractiveInferenceSession``: set_image,
set_target_buffer, add_point/bbox/scribble/lasso_interaction, add_initial_seg_interaction,
reset_interactions; coordinates are array indices of the image as given, half-open boxes with
one axis one slice thick). The image goes in as it is (the authors ask for no normalisation).
Its session is stateful: a prompt that extends the last ones is added to it; anything else
(undo, a new object, another ``previous``) starts it over from ``previous`` and replays them.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from core.progress import check
from core.volume import Volume
from inference.interactive.engine import EngineInfo, register
from inference.interactive.prompts import Box, Lasso, Point, Prompts, rasterise, to_index

WEIGHTS_ENV = "DELINEATE_NNINTERACTIVE_WEIGHTS"


def weights_folder() -> Optional[Path]:
    value = os.environ.get(WEIGHTS_ENV, "").strip()
    return Path(value).expanduser() if value else None


def available() -> Optional[str]:
    import importlib.util

    try:
        found = importlib.util.find_spec("nnInteractive.inference.inference_session") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return "the nnInteractive package is not installed (pip install nnInteractive, with its own PyTorch)"
    return weights_problem()


def weights_problem() -> Optional[str]:
    """Why the weights setting does not name a usable model folder (None when it does)."""
    folder = weights_folder()
    if folder is None:
        return f"no nnInteractive weights: set {WEIGHTS_ENV} to the trained model folder"
    if not folder.is_dir():
        return f"nnInteractive weights folder {folder} does not exist"
    if not any(folder.glob("**/*.pth")):
        return f"nnInteractive weights folder {folder} holds no checkpoint (*.pth)"
    return None


class NNInteractiveEngine:
    name = "nninteractive"

    def __init__(self, device=None) -> None:
        import torch

        if device in (None, "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)

    def open(self, volume: Volume) -> "NNInteractiveState":
        return NNInteractiveState(volume, self.device)


class NNInteractiveState:
    def __init__(self, volume: Volume, device) -> None:
        import torch
        from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

        a = volume.array
        if a.ndim == 4:
            a = a[..., :3].astype(np.float32).mean(axis=-1)
        self.geometry = volume.geometry
        self.session = nnInteractiveInferenceSession(device=device, use_torch_compile=False, verbose=False,
                                                     torch_n_threads=max(1, min(os.cpu_count() or 1, 8)),
                                                     do_autozoom=True)
        self.session.initialize_from_trained_model_folder(str(weights_folder()))
        self.session.set_image(np.asarray(a)[None])  # (1, z, y, x): the array as it is
        self.target = torch.zeros(a.shape, dtype=torch.uint8)
        self.session.set_target_buffer(self.target)
        self.applied: tuple = ()
        self.last: Optional[np.ndarray] = None
        self.lock = threading.Lock()

    def predict(self, prompts: Prompts, previous: Optional[np.ndarray] = None, cancel=None) -> np.ndarray:
        from core.errors import Cancelled, DelineateError

        rasterise(prompts, self.geometry)  # a bad prompt fails here, before the session changes
        with self.lock:  # one session: a superseded prompt still running finishes first
            try:
                return self._predict(prompts.items, previous, cancel)
            except (Cancelled, DelineateError):
                self.applied = ()  # the session is part-way: start over next time
                raise
            except (ValueError, AssertionError, RuntimeError) as e:  # its own checks (a 3D box, shapes)
                self.applied = ()
                raise DelineateError(f"nnInteractive refused the prompts: {e}") from None

    def _predict(self, items, previous, cancel) -> np.ndarray:
        n = len(self.applied)
        same_previous = previous is None if self.last is None else \
            previous is not None and np.array_equal(previous, self.last)
        extends = n < len(items) and items[:n] == self.applied and same_previous
        if not extends:
            self.session.reset_interactions()
            if previous is not None and np.any(previous):
                self.session.add_initial_seg_interaction(np.asarray(previous, np.uint8), run_prediction=False)
            n = 0
        for p in items[n:]:  # each predicted in turn: the model reads its own previous answer
            check(cancel)
            self._add(p)
        self.applied = items
        self.last = self.target.cpu().numpy().astype(bool)
        return self.last.copy()

    def _add(self, p, run: bool = True) -> None:
        s, geo = self.session, self.geometry
        if isinstance(p, Point):
            i, j, k = np.rint(to_index(geo, p.lps)).astype(int)
            s.add_point_interaction((int(k), int(j), int(i)), include_interaction=p.positive, run_prediction=run)
            return
        r = rasterise(Prompts((p,)), geo, point_radius_vox=1)
        if isinstance(p, Box):
            box = [[sl.start, sl.stop] for sl in r.box]
            s.add_bbox_interaction(box, include_interaction=True, run_prediction=run)
            return
        drawn = r.box_mask if isinstance(p, Lasso) and p.positive else (r.positive | r.negative)
        box = [[sl.start, sl.stop] for sl in r.box]
        crop = drawn[tuple(slice(a, b) for a, b in box)].astype(np.uint8)
        add = s.add_lasso_interaction if isinstance(p, Lasso) else s.add_scribble_interaction
        add(crop, include_interaction=p.positive, run_prediction=run, interaction_bbox=box)


register(EngineInfo("nninteractive", "nnInteractive (MIC-DKFZ; installed separately)", available,
                    lambda device=None: NNInteractiveEngine(device)))
