"""Label tables embedded in files: JSON under one key, plus 3D Slicer's segmentation fields in NRRD."""
from __future__ import annotations

import json
from typing import Mapping, Optional

from core.labels import Code, Label, LabelTable

KEY = "DelineateLabels"


def to_json(table: LabelTable) -> str:
    return json.dumps(table.to_dict(), separators=(",", ":"))


def from_json(text: Optional[str]) -> Optional[LabelTable]:
    if not text:
        return None
    try:
        return LabelTable.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None


def slicer_fields(table: LabelTable) -> dict[str, str]:
    """Segment metadata as 3D Slicer writes into .seg.nrrd (one layer, label values as is)."""
    out = {}
    for i, lab in enumerate(table):
        p = f"Segment{i}_"
        out[p + "ID"] = f"Segment_{lab.value}"
        out[p + "Name"] = lab.name
        out[p + "Color"] = " ".join(f"{c / 255:.6g}" for c in lab.color)
        out[p + "LabelValue"] = str(lab.value)
        out[p + "Layer"] = "0"
        if lab.category and lab.type:
            # Slicer's terminology string: ~-separated "scheme^value^meaning" triplets
            c, t = lab.category, lab.type
            out[p + "Terminology"] = (f"Segmentation category and type - DICOM master list~"
                                      f"{c.scheme}^{c.value}^{c.meaning}~{t.scheme}^{t.value}^{t.meaning}~^^~"
                                      f"Anatomic codes - DICOM master list~^^~^^")
    return out


def _parse_code(text: str) -> Optional[Code]:
    parts = text.split("^")
    return Code(parts[0], parts[1], parts[2]) if len(parts) == 3 and parts[1] else None


def from_slicer_fields(meta: Mapping[str, str]) -> Optional[LabelTable]:
    labels = []
    i = 0
    while f"Segment{i}_Name" in meta or f"Segment{i}_LabelValue" in meta:
        p = f"Segment{i}_"
        value = int(meta.get(p + "LabelValue", i + 1))
        color = tuple(int(round(float(c) * 255)) for c in meta.get(p + "Color", "1 0 0").split()[:3])
        category = typ = None
        term = meta.get(p + "Terminology", "").split("~")
        if len(term) >= 3:
            category, typ = _parse_code(term[1]), _parse_code(term[2])
        labels.append(Label(value, meta.get(p + "Name", f"Segment {i}"), color, category, typ))
        i += 1
    return LabelTable(tuple(labels)) if labels else None
