"""Per-segment statistics for export and the report: size, intensity, extent, and - when the AI's
draft is known - agreement between the draft and the corrected mask."""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from core.labels import LabelMap
from core.metrics import compare_labelmaps, finite_or_none
from core.volume import Volume

COLUMNS = ("value", "name", "voxels", "volume_ml", "mean", "sd", "min", "max", "unit",
           "bbox_index_min", "bbox_index_max", "bbox_lps_min_mm", "bbox_lps_max_mm",
           "dice_vs_ai", "iou_vs_ai", "hd95_vs_ai_mm", "assd_vs_ai_mm", "ai_volume_ml")


def _world_box(labelmap: LabelMap, lo, hi) -> tuple[list[float], list[float]]:
    """LPS box of the voxels' extent (centres +- half a voxel), over all 8 corners (oblique grids)."""
    corners = np.array([[x, y, z] for x in (lo[0] - .5, hi[0] + .5) for y in (lo[1] - .5, hi[1] + .5)
                        for z in (lo[2] - .5, hi[2] + .5)])
    w = labelmap.geometry.index_to_world(corners)
    return w.min(axis=0).round(3).tolist(), w.max(axis=0).round(3).tolist()


def segment_statistics(volume: Optional[Volume], labelmap: LabelMap, ai: Optional[LabelMap] = None) -> list[dict]:
    """One row per label of the table (present or not). Intensities in the image's physical
    units (HU for CT); colour images get no intensity columns."""
    arr = labelmap.array
    values = labelmap.table.values()
    index = np.asarray(values)
    counts = ndimage.sum_labels(np.ones(arr.shape, np.uint8), arr, index) if values else []
    grey = volume is not None and not volume.is_color
    if grey:
        img = volume.array
        with np.errstate(invalid="ignore", divide="ignore"):  # absent labels: NaN, reported as None
            mean, var = ndimage.mean(img, arr, index), ndimage.variance(img, arr, index)
        mins, maxs = ndimage.minimum(img, arr, index), ndimage.maximum(img, arr, index)
    boxes = ndimage.find_objects(arr)
    agreement = {c.value: c for c in compare_labelmaps(ai, labelmap)} if ai is not None else {}
    unit = "HU" if volume is not None and volume.modality == "CT" else ""
    rows = []
    for n, lab in enumerate(labelmap.table):
        count = int(counts[n])
        row = dict.fromkeys(COLUMNS)
        row.update(value=lab.value, name=lab.name, voxels=count,
                   volume_ml=round(count * labelmap.geometry.voxel_volume_ml(), 4), unit=unit)
        if count and grey:
            row.update(mean=float(mean[n]), sd=float(np.sqrt(var[n])), min=float(mins[n]), max=float(maxs[n]))
        box = boxes[lab.value - 1] if lab.value - 1 < len(boxes) else None
        if count and box is not None:
            lo = [box[2].start, box[1].start, box[0].start]
            hi = [box[2].stop - 1, box[1].stop - 1, box[0].stop - 1]
            row["bbox_index_min"], row["bbox_index_max"] = lo, hi
            row["bbox_lps_min_mm"], row["bbox_lps_max_mm"] = _world_box(labelmap, lo, hi)
        c = agreement.get(lab.value)
        if c is not None:
            row.update(dice_vs_ai=c.dice, iou_vs_ai=c.iou, hd95_vs_ai_mm=finite_or_none(c.hausdorff95_mm),
                       assd_vs_ai_mm=finite_or_none(c.assd_mm), ai_volume_ml=round(c.volume_a_ml, 4))
        rows.append(row)
    return rows
