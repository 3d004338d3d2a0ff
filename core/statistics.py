"""Per-segment statistics for export and the report: size, intensity, extent, and - when the AI's
draft is known - agreement between the draft and the corrected mask."""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from core.labels import LabelMap
from core.metrics import compare_labelmaps, finite_or_none, label_diff
from core.planar import planar_area
from core.volume import Volume, luminance

COLUMNS = ("value", "name", "voxels", "volume_ml", "mean", "sd", "min", "max", "unit",
           "bbox_index_min", "bbox_index_max", "bbox_lps_min_mm", "bbox_lps_max_mm",
           "dice_vs_ai", "iou_vs_ai", "hd95_vs_ai_mm", "assd_vs_ai_mm", "ai_volume_ml", "added_by_reviewer",
           "area_px", "area_mm2", "area_frame", "ai_voxels", "ai_area_px", "ai_area_mm2", "ai_area_frame")


def _world_box(labelmap: LabelMap, lo, hi) -> tuple[list[float], list[float]]:
    """LPS box of the voxels' extent (centres +- half a voxel), over all 8 corners (oblique grids)."""
    corners = np.array([[x, y, z] for x in (lo[0] - .5, hi[0] + .5) for y in (lo[1] - .5, hi[1] + .5)
                        for z in (lo[2] - .5, hi[2] + .5)])
    w = labelmap.geometry.index_to_world(corners)
    return w.min(axis=0).round(3).tolist(), w.max(axis=0).round(3).tolist()


def segment_statistics(volume: Optional[Volume], labelmap: LabelMap, ai: Optional[LabelMap] = None) -> list[dict]:
    """One row per label of the table (present or not). Intensities in the image's physical
    units (HU for CT); on a colour image they are of its luminance (BT.601, as the ROI statistics
    and a grey screen read it; ``unit`` says "luminance"). A segment the AI's draft does not
    have is ``added_by_reviewer`` (no agreement figures: there is nothing to agree with). On a 2D
    image or cine loop a segment has an area (core.planar.planar_area), not a volume; without a
    pixel size from the file there is no volume or area in mm, only voxel counts. The AI draft's
    size is given in the same columns (``ai_`` before each)."""
    arr = labelmap.array
    boxes = ndimage.find_objects(arr)  # one pass; each segment is then measured inside its own box
    measured = {}
    for lab in labelmap.table:
        box = boxes[lab.value - 1] if 0 < lab.value <= len(boxes) else None
        if box is None:
            continue
        inside = arr[box] == lab.value
        vals = None
        if volume is not None:
            vals = volume.array[box][inside]
            vals = luminance(vals) if volume.is_color else vals.astype(np.float64)
        measured[lab.value] = (box, int(np.count_nonzero(inside)), vals)
    agreement = ({c.value: c for c in compare_labelmaps(ai, labelmap, label_diff(ai.array, arr, boxes))}
                 if ai is not None else {})
    unit = "" if volume is None else "luminance" if volume.is_color else "HU" if volume.modality == "CT" else ""
    ai_boxes = ndimage.find_objects(ai.array) if ai is not None else []
    rows = []
    for lab in labelmap.table:
        box, count, vals = measured.get(lab.value, (None, 0, None))
        row = dict.fromkeys(COLUMNS)
        row.update(value=lab.value, name=lab.name, unit=unit, **_size(volume, labelmap, arr, box, lab.value))
        if ai is not None:
            ai_box = ai_boxes[lab.value - 1] if 0 < lab.value <= len(ai_boxes) else None
            row.update({"ai_" + k: v for k, v in _size(volume, ai, ai.array, ai_box, lab.value).items()})
        if count and vals is not None:
            row.update(mean=float(vals.mean()), sd=float(vals.std()), min=float(vals.min()), max=float(vals.max()))
        if count:
            lo = [box[2].start, box[1].start, box[0].start]
            hi = [box[2].stop - 1, box[1].stop - 1, box[0].stop - 1]
            row["bbox_index_min"], row["bbox_index_max"] = lo, hi
            row["bbox_lps_min_mm"], row["bbox_lps_max_mm"] = _world_box(labelmap, lo, hi)
        c = agreement.get(lab.value)
        if c is not None and count and not c.volume_a_ml:
            row.update(added_by_reviewer=True)  # no Dice against a draft that never had it
        elif c is not None:
            row.update(dice_vs_ai=c.dice, iou_vs_ai=c.iou, hd95_vs_ai_mm=finite_or_none(c.hausdorff95_mm),
                       assd_vs_ai_mm=finite_or_none(c.assd_mm), added_by_reviewer=False)
        rows.append(row)
    return rows


def _size(volume: Optional[Volume], labelmap: LabelMap, arr: np.ndarray, box, value: int) -> dict:
    """A segment's size columns: voxels, and ml on a volume with a known spacing, or the area
    columns on a planar image (never a volume: a flat image has none)."""
    count = int(np.count_nonzero(arr[box] == value)) if box is not None else 0
    out = {"voxels": count}
    if volume is not None and volume.is_planar:
        out.update(planar_area(volume, arr[box] == value, box[0].start) if count
                   else planar_area(volume, np.zeros((1, 1), bool)))
    elif volume is None or volume.spacing_known:
        out["volume_ml"] = round(count * labelmap.geometry.voxel_volume_ml(), 4)
    return out
