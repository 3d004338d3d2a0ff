"""Sample images the app opens with no download, found by name (resources/samples/index.json)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from core.errors import DelineateError

INDEX = Path(__file__).resolve().parent.parent / "resources" / "samples" / "index.json"
DEFAULT = "mni152-t1"


def _entries() -> dict:
    return {k: v for k, v in json.loads(INDEX.read_text()).items() if not k.startswith("_")}


def names() -> list[str]:
    return list(_entries())


def describe(name: str) -> dict:
    try:
        return dict(_entries()[name])
    except KeyError:
        raise DelineateError(f"no sample named {name!r}; samples: {', '.join(names())}") from None


def path(name: str = DEFAULT) -> Path:
    entry = describe(name)
    spec = importlib.util.find_spec(entry["package"])
    if spec is None or not spec.submodule_search_locations:
        raise DelineateError(f"sample {name!r} needs the package {entry['package']!r}; pip install -r requirements.txt")
    p = Path(list(spec.submodule_search_locations)[0]) / entry["path"]
    if not p.exists():
        raise DelineateError(f"sample {name!r} is missing at {p}")
    return p


def mni152_tissue(reference=None, threshold: float = 0.5):
    """Grey / white matter label map on the MNI152 T1 grid from nilearn's probability maps
    (the template's own tissue classes: a sample overlay, not a model's output)."""
    import numpy as np

    from core.labels import Label, LabelMap, LabelTable
    from formats.io import read_image

    gm = read_image(path("mni152-gm"))
    wm = read_image(path("mni152-wm"))
    geo = reference.geometry if reference is not None else gm.geometry
    g, w = gm.array.astype(np.float32), wm.array.astype(np.float32)
    scale = 1.0 / max(float(g.max()), float(w.max()), 1e-6)  # maps ship as 0..1 floats or 0..255 bytes
    g, w = g * scale, w * scale
    labels = np.zeros(g.shape, np.uint8)
    labels[(g > threshold) & (g >= w)] = 1
    labels[(w > threshold) & (w > g)] = 2
    table = LabelTable((
        Label(1, "Grey matter", (230, 160, 60)),
        Label(2, "White matter", (80, 170, 230)),
    ))
    return LabelMap(labels, geo, table)
