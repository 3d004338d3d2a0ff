"""Running models on the open image, and comparing a second model with the mask being edited."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.progress import no_progress


_prefetching: Optional[threading.Thread] = None


def prefetch() -> None:
    """Import what a model run needs (torch, the runner, MONAI's U-Net and sliding-window modules: 2-3 s
    on a 2-core CPU) in a background thread, while the caller does something else, such as waiting on
    the image being decoded in its child process. Once per process; the run imports whatever is not
    there yet itself, and reports any problem."""
    global _prefetching
    if _prefetching is None:
        _prefetching = threading.Thread(target=_import_runner, name="delineate-prefetch", daemon=True)
        _prefetching.start()


def _import_runner() -> None:
    try:
        from inference.runner import import_network_modules

        import_network_modules()
    except Exception:  # noqa: BLE001 - the run itself will import them and say what is wrong
        pass


def segment(volume, card, device: str = "auto", progress=no_progress, cancel=None):
    """The model's segmentation on the image's own grid (inference.runner.Segmentation)."""
    from inference.runner import segment as run

    return run(volume, card, progress, cancel, device)


def segment_checked(volume, card, device: str = "auto", progress=no_progress, cancel=None):
    """The segmentation with the out-of-distribution guard's verdict (app.actions.guard.Guarded)."""
    from app.actions.guard import check_run
    from inference.envelope import run_and_measure

    run, quantiles = run_and_measure(volume, card, progress, cancel, device)
    return check_run(volume, card, run, quantiles)


@dataclass
class Comparison:
    run: object  # the other model's Segmentation
    rows: list  # core.compare.LabelComparison per label
    differ: np.ndarray  # 0 agree, 1 one of them, 2 both but different labels
    heatmap: object  # core.overlay.HeatMap of ``differ``

    @property
    def fraction(self) -> float:
        return float(self.differ.mean())


def compare(volume, current, card, mine: str = "the mask on screen", device: str = "auto",
            progress=no_progress, cancel=None) -> Comparison:
    """Run ``card`` and compare it label by label (Dice, HD95) with ``current`` (a copy of the
    mask on screen, which stays as it is); the disagreement becomes a heat map."""
    from core.compare import compare_models
    from core.overlay import HeatMap

    other = segment(volume, card, device, progress, cancel)
    rows, differ = compare_models(current, other.labels)
    # 1 sits mid-scale: viridis teal, apart from red/yellow segments and from white tissue
    heat = HeatMap.from_values(disagreement_name(mine, card.id), differ.astype(np.float32), volume.geometry, vmin=0,
                               vmax=2, colormap="viridis", opacity=0.75, threshold=0.5)
    return Comparison(other, rows, differ, heat)


def disagreement_name(mine: str, other: str) -> str:
    return f"Disagreement: {mine} vs {other}"
