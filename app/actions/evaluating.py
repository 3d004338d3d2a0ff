"""Checking a model on a site's own labelled cases before trusting it: the model segments each image,
and its labels are compared with the site's (matched by name where the site's label maps carry names,
else by value) - Dice, IoU, HD95 per label and case, and the mean per label."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DelineateError
from core.progress import check, no_progress

LABEL_SUFFIXES = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".mha", ".mhd")


@dataclass
class Evaluation:
    model: str
    rows: list = field(default_factory=list)  # (case name, core.metrics.LabelComparison)
    matched_by: str = "name"
    warnings: dict = field(default_factory=dict)  # case name -> the guard's reasons

    def means(self) -> dict:
        """label name -> (mean Dice, mean IoU, mean HD95 mm over finite values, cases)."""
        import math

        by: dict = {}
        for _case, r in self.rows:
            by.setdefault(r.name, []).append(r)
        out = {}
        for name, rs in by.items():
            hd = [r.hausdorff95_mm for r in rs if math.isfinite(r.hausdorff95_mm)]
            out[name] = (sum(r.dice for r in rs) / len(rs), sum(r.iou for r in rs) / len(rs),
                         sum(hd) / len(hd) if hd else float("nan"), len(rs))
        return out


def pairs(images: str, labels: str) -> list[tuple[Path, Path]]:
    """(image, label map) pairs: two files, or two folders paired by file name (``case1.nii.gz`` with
    ``case1.nii.gz``, ``case1_seg.nii.gz`` or ``case1.seg.nrrd``)."""
    images, labels = Path(images), Path(labels)
    if images.is_file() and labels.is_file():
        return [(images, labels)]
    if not (images.is_dir() and labels.is_dir()):
        raise DelineateError(f"{images} and {labels}: give two files, or two folders of cases")

    def stem(p: Path) -> str:
        name = p.name
        for s in LABEL_SUFFIXES:
            if name.endswith(s):
                name = name[: -len(s)]
                break
        for tail in ("_seg", "_label", "_labels", "-seg", "_mask"):
            name = name.removesuffix(tail)
        return name

    found = {stem(p): p for p in sorted(labels.iterdir()) if p.is_file()}
    out = [(p, found[stem(p)]) for p in sorted(images.iterdir()) if stem(p) in found]
    if not out:
        raise DelineateError(f"no image in {images} has a label map of the same name in {labels}")
    return out


def evaluate(card, images: str, labels: str, device: str = "auto", progress=no_progress, cancel=None) -> Evaluation:
    from app.actions import opening, segmenting
    from core.compare import matched
    from core.metrics import compare_labelmaps
    from formats.io import read_labelmap

    cases = pairs(images, labels)
    result = Evaluation(f"{card.id} v{card.version}")
    names = {lab.name.lower() for lab in card.labels}
    for n, (image, label_file) in enumerate(cases):
        check(cancel)
        progress(n / len(cases), f"case {n + 1} of {len(cases)}: {image.name}")
        vol = opening.read(str(image))
        truth = read_labelmap(label_file, vol)
        guarded = segmenting.segment_checked(vol, card, device)
        if guarded.warnings:
            result.warnings[image.name] = guarded.warnings
        if names & {lab.name.lower() for lab in truth.table}:
            truth = matched(truth, guarded.run.labels)
        else:
            result.matched_by = "value"  # the site's map has no names the model knows
        for row in compare_labelmaps(guarded.run.labels, truth):
            if card.labels.get(row.value) is not None:
                result.rows.append((image.name, row))
    progress(1.0, "evaluated")
    return result
