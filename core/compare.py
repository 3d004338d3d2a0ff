"""Two segmentations of one image side by side: the second model's labels matched to the first's by
name, per-label agreement, and where they disagree (another signal of where to look)."""
from __future__ import annotations

import numpy as np

from core.labels import LabelMap
from core.metrics import LabelComparison, compare_labelmaps


def matched(b: LabelMap, a: LabelMap) -> LabelMap:
    """``b`` with its values renumbered to ``a``'s where the label names agree (case-insensitive);
    labels ``a`` lacks keep values above ``a``'s largest."""
    lut = np.zeros(max(b.table.values() or [0]) + 1, dtype=np.int64)
    spare = max(a.table.values() or [0]) + 1
    table = a.table
    for lab in b.table:
        same = a.table.by_name(lab.name)
        if same is not None:
            lut[lab.value] = same.value
        else:
            lut[lab.value] = spare
            table = table.with_label(type(lab)(spare, lab.name, lab.color, lab.category, lab.type))
            spare += 1
    dtype = np.uint8 if spare < 256 else np.uint16
    return LabelMap(lut[b.array].astype(dtype), b.geometry, table)


def compare_models(a: LabelMap, b: LabelMap) -> tuple[list[LabelComparison], np.ndarray]:
    """Per-label agreement (b matched to a by name) and the voxels where the two label differently."""
    b = matched(b, a)
    return compare_labelmaps(a, b), a.array != b.array
