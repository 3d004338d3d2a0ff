"""Explaining the model that made the draft: saliency for one label in a region (by default the
connected piece under the crosshair), or the uncertainty map with its regions ranked for review.
Results come back as heat-map layers on the image's grid."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from core.errors import DelineateError
from core.progress import no_progress
from inference.xai_text import LEGENDS, METHODS

NAMES = {"gradcam": "Grad-CAM", "occlusion": "Occlusion", "ig": "Integrated gradients", "uncertainty": "Uncertainty"}
assert set(NAMES) == set(METHODS)


@dataclass
class Explained:
    explanation: object  # inference.xai.Explanation
    heatmap: object  # core.overlay.HeatMap
    regions: list = field(default_factory=list)  # uncertainty: regions ranked for review
    summary: str = ""


def _known(method: str) -> None:
    if method not in METHODS:
        raise DelineateError(f"unknown explanation method {method!r}; one of {', '.join(METHODS)}")


def region(labelmap, value: int, index_xyz=None, whole: bool = False) -> np.ndarray:
    """The connected piece of ``value`` holding voxel ``index_xyz``, else every voxel of it."""
    from scipy import ndimage

    mask = labelmap.array == value
    if not whole and index_xyz is not None:
        i, j, k = index_xyz
        if mask[k, j, i]:
            comp, _n = ndimage.label(mask)
            return comp == comp[k, j, i]
    return mask


def explain(volume, run, method: str, value: Optional[int] = None, roi: Optional[np.ndarray] = None,
            label_name=str, progress=no_progress, cancel=None) -> Explained:
    """``run``: the model's Segmentation of ``volume``; ``value``: the label explained (not for
    uncertainty); ``label_name(value)`` names labels in the layer's title and the summary."""
    from core.overlay import HeatMap
    from inference import xai

    _known(method)
    if run is None or run.labels.geometry is not volume.geometry:
        raise DelineateError("run a model first (Segment → Run the default model): explanations are of a model")
    if method == "uncertainty":
        result = xai.uncertainty(volume, run.card, progress, cancel)  # run.probabilities would be made for nothing
    else:
        if value is None:
            raise DelineateError("choose the label to explain")
        result = xai.explain(volume, run.card, value, method, roi=roi, progress=progress, cancel=cancel)
    name = NAMES[method] + ("" if method == "uncertainty" else f" ({label_name(value)})")
    heat = HeatMap.from_values(name, result.values, volume.geometry, vmin=0.0, vmax=1.0,
                               colormap="viridis" if method == "uncertainty" else "inferno",
                               threshold=0.3 if method == "uncertainty" else 0.1, meaning=LEGENDS[method])
    if method != "uncertainty":
        return Explained(result, heat, [], f"{name}: {result.extra.get('windows', 1)} window(s) explained.")
    regions = xai.uncertain_regions(result.values, 0.5, min_voxels=27 if result.values.shape[0] > 1 else 9,
                                    spacing_xyz=volume.geometry.spacing)
    scores = ", ".join(f"{label_name(v)} {s:.2f}" for v, s in result.extra["per_segment"].items())
    summary = (f"Case uncertainty {result.extra['case']:.3f} (mean normalised entropy in the segments); "
               f"per segment: {scores or '-'}; {len(regions)} regions above 0.5.")
    return Explained(result, heat, regions, summary)


def label_value(card, text: Optional[str] = None) -> int:
    """A label of ``card`` by name or value (default: its first label)."""
    lab = card.labels.by_name(text) if text else next(iter(card.labels))
    if lab is None and text and text.isdigit():
        lab = card.labels.get(int(text))
    if lab is None:
        raise DelineateError(f"{card.id} has no label {text!r}; labels: " + ", ".join(x.name for x in card.labels))
    return lab.value


def explain_model(volume, card, method: str, label: Optional[str] = None, device: str = "auto",
                  progress=no_progress, cancel=None):
    """A map of ``card`` on the whole image (no segmentation on screen first): saliency of
    ``label`` (name or value; default the first) where the model predicts it, or uncertainty."""
    from inference import xai

    _known(method)
    if method == "uncertainty":
        return xai.uncertainty(volume, card, progress, cancel, device=device)
    return xai.explain(volume, card, label_value(card, label), method, progress=progress, cancel=cancel, device=device)


def describe_region(r: dict, total: int) -> str:
    return (f"Region {r['rank']}/{total} (ranked by volume x mean uncertainty): {r['volume_ml']:.2f} mL, "
            f"mean uncertainty {r['mean']:.2f}, score {r['score']:.3g}")


def region_centre_world(volume, r: dict) -> np.ndarray:
    z, y, x = r["centre_zyx"]
    return volume.geometry.index_to_world([x, y, z])
