"""Export the approved corrections as a training dataset for training elsewhere at scale:
nnU-Net v2 raw layout or a MONAI datalist. The store's fixed split decides train vs held-out."""
from __future__ import annotations

import json
import re
from pathlib import Path

from core.errors import DelineateError
from formats.atomic import atomic_output
from formats.io import write_image, write_labelmap
from store.corrections import CorrectionsStore


def _write_json(path: Path, data) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n")


def export(store: CorrectionsStore, out: Path, fmt: str = "nnunet", name: str = "Dataset500_Delineate") -> dict:
    """Write the approved cases; returns {"train": n, "holdout": m}."""
    if fmt not in ("nnunet", "monai"):
        raise DelineateError("format must be nnunet or monai")
    if fmt == "nnunet" and not re.fullmatch(r"Dataset\d{3}_\w+", name):
        raise DelineateError("nnU-Net dataset names look like Dataset500_Name")
    cases = store.cases("approved")
    if not cases:
        raise DelineateError("no approved corrections in the store")
    root = Path(out) / name if fmt == "nnunet" else Path(out)
    counts, labels, modality, datalist = {"train": 0, "holdout": 0}, {}, cases[0].modality, {"training": [], "validation": []}
    for i, case in enumerate(sorted(cases, key=lambda c: c.id)):
        image, _ai, fixed = store.load(case.id)
        for lab in fixed.table:
            if labels.setdefault(lab.name, lab.value) != lab.value:
                raise DelineateError(f"label '{lab.name}' has different values across cases; harmonise first")
        stem = f"case_{i:04d}"
        if fmt == "nnunet":
            tr = case.split == "train"
            img_path = root / ("imagesTr" if tr else "imagesTs") / f"{stem}_0000.nii.gz"
            lab_path = root / ("labelsTr" if tr else "labelsTs") / f"{stem}.nii.gz"
        else:
            img_path, lab_path = root / "images" / f"{stem}.nii.gz", root / "labels" / f"{stem}.nii.gz"
            entry = {"image": str(img_path.relative_to(root)), "label": str(lab_path.relative_to(root)),
                     "case": case.id}
            datalist["training" if case.split == "train" else "validation"].append(entry)
        write_image(image, img_path)
        write_labelmap(fixed, lab_path)
        counts[case.split] += 1
    if fmt == "nnunet":
        _write_json(root / "dataset.json", {
            "channel_names": {"0": "CT" if modality == "CT" else modality},
            "labels": {"background": 0, **dict(sorted(labels.items(), key=lambda kv: kv[1]))},
            "numTraining": counts["train"], "file_ending": ".nii.gz",
            "description": "Approved corrections exported from a Delineate store (de-identified)"})
    else:
        datalist["labels"] = {str(v): k for k, v in labels.items()}
        _write_json(root / "datalist.json", datalist)
    return counts
