"""Export one reviewed case in any of the formats, the one path the GUI and the CLI share.

Everything an export writes goes into a hidden staging folder beside the target and is moved into
place only when all of it is written: a failed or cancelled export leaves nothing behind."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import DelineateError, FormatError
from core.labels import LabelMap
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.statistics import COLUMNS, segment_statistics
from core.volume import Volume
from formats.atomic import atomic_output

FORMATS = {
    "seg": "DICOM Segmentation (binary; fractional with probabilities)",
    "rtstruct": "DICOM RT Structure Set",
    "nifti": "NIfTI label map (.nii.gz) with its label table",
    "nrrd": "NRRD label map (.seg.nrrd, 3D Slicer segment fields)",
    "stl": "one STL surface per segment, patient LPS mm",
    "obj": "one OBJ surface (+ .mtl colour) per segment, patient LPS mm",
    "gltf": "all segment surfaces as one glTF scene in their colours, patient LPS mm",
    "stats": "segment statistics (.csv or .json)",
    "report": "review report (.pdf, or .png to look at)",
}
SUFFIXES = {"seg": (".dcm",), "rtstruct": (".dcm",), "nifti": (".nii.gz", ".nii"), "nrrd": (".seg.nrrd", ".nrrd"), "gltf": (".gltf",),
             "stats": (".csv", ".json"), "report": (".pdf", ".png")}  # the first is added when none is given


@dataclass
class ExportRequest:
    fmt: str
    volume: Volume
    labelmap: LabelMap
    out: Path
    ai: Optional[LabelMap] = None
    probabilities: Optional[np.ndarray] = None  # (C, z, y, x) for a fractional SEG
    deidentify: bool = False
    compress: bool = False  # SEG: JPEG 2000 lossless frames
    model: Optional[dict] = None  # ModelCard.report_dict()
    reviewer: str = ""
    state: str = ""
    case_id: str = ""
    notes: list[str] = field(default_factory=list)
    explanation: Optional[object] = None  # report: export.heat_image.ExplanationView
    regions: dict = field(default_factory=dict)  # report: key-image regions (export.report.ReportInfo)
    measurements: list = field(default_factory=list)  # the reader's, as core.measurements.row gives them


def _with_suffix(path: Path, fmt: str) -> Path:
    accepted = SUFFIXES.get(fmt)
    if accepted is None or path.name.lower().endswith(accepted):
        return path
    return path.with_name(path.name + accepted[0])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "segment"


def dicom_sources(req: ExportRequest, progress: ProgressFn, cancel: Optional[CancelToken]):
    """The instances a SEG/RTSTRUCT references: the image's own DICOM files (de-identified copies
    written beside the export when asked), or, for images from other formats, the image written as
    a new DICOM series beside the export (a SEG must reference DICOM images)."""
    import pydicom

    from formats.dicom.sources import source_datasets
    from formats.dicom.write import write_series

    folder = req.out.parent / f"{req.out.name.split('.')[0]}-images"
    if req.volume.metadata.get("series_uid") and req.volume.source:
        if not req.deidentify:
            return source_datasets(req.volume), []
        from formats.dicom.deid import Deidentifier
        from formats.dicom.seg import with_type2

        deid = Deidentifier()
        out, written = [], []
        originals = source_datasets(req.volume, pixels=True)
        folder.mkdir(parents=True, exist_ok=True)
        for n, ds in enumerate(originals):
            check(cancel)
            clean = with_type2(deid(ds))  # anonymised sources often lack Type 2 attributes altogether
            path = folder / f"IM{n + 1:05d}.dcm"
            with atomic_output(path) as tmp:
                clean.save_as(tmp, enforce_file_format=True)
            out.append(clean)
            written.append(path)
            progress(0.5 * (n + 1) / len(originals), "de-identifying the source images")
        return out, written
    if req.volume.is_color:
        raise FormatError(req.volume.source or None, "colour images cannot be written as the CT/MR series a "
                                                      "SEG would reference; export NIfTI/NRRD instead")
    paths = write_series(req.volume, folder, series_description="Delineate image (derived)",
                         progress=lambda f, m: progress(0.5 * f, m), cancel=cancel)
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths], paths


def statistics_text(rows: list[dict], suffix: str, measurements=()) -> str:
    if suffix == ".json":
        return json.dumps(dict({"segments": rows}, **({"measurements": list(measurements)} if measurements else {})),
                          indent=2)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (" ".join(f"{v:g}" for v in r[k]) if isinstance(r[k], list) else r[k]) for k in COLUMNS})
    return buf.getvalue()


def export(req: ExportRequest, progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None) -> list[Path]:
    """Write the case in ``req.fmt``; returns every file written (the main one first). All or
    nothing: on any failure (or cancel) no file of this export remains."""
    if req.fmt not in FORMATS:
        raise DelineateError(f"unknown export format {req.fmt!r}; choose from {', '.join(FORMATS)}")
    if not req.volume.geometry.same_grid(req.labelmap.geometry, tol=1e-4):
        raise DelineateError("the label map is not on the image's grid")
    out = _with_suffix(Path(req.out), req.fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".delineate-export-", dir=out.parent))
    try:
        req.out = staging / out.name
        written = _export(req, progress, cancel)
        check(cancel)
        _move_into_place(staging, out.parent, main=out.name)
        return [out.parent / p.relative_to(staging) for p in written]
    finally:
        req.out = out
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, folder: Path, main: str) -> None:
    """Move the staged files and folders into ``folder``, the main file last; a folder of the same
    name (an earlier export's images or surfaces) is replaced as a whole, not merged."""
    for item in sorted(staging.iterdir(), key=lambda p: p.name == main):
        target = folder / item.name
        if item.is_dir() and target.is_dir():
            old = staging / f".old-{item.name}"
            os.replace(target, old)
            os.replace(item, target)
        else:
            os.replace(item, target)
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def _export(req: ExportRequest, progress: ProgressFn, cancel: Optional[CancelToken]) -> list[Path]:
    out, fmt = req.out, req.fmt
    algorithm_type = "SEMIAUTOMATIC" if req.model else "MANUAL"
    algorithm = ((req.model or {}).get("id", "Delineate"), str((req.model or {}).get("version", "1")))
    if fmt in ("seg", "rtstruct"):
        sources, extra = dicom_sources(req, progress, cancel)
        progress(0.5, f"writing {FORMATS[fmt]}")
        if fmt == "seg":
            from formats.dicom.seg import EXPLICIT_LE, JPEG2000_LOSSLESS, write_seg

            write_seg(req.labelmap, sources, out, probabilities=req.probabilities, algorithm=algorithm,
                      algorithm_type=algorithm_type, transfer_syntax=JPEG2000_LOSSLESS if req.compress else EXPLICIT_LE)
        else:
            from formats.dicom.rtstruct import write_rtstruct

            write_rtstruct(req.labelmap, sources, out, algorithm=algorithm_type, reviewer=req.reviewer,
                           progress=lambda f, m: progress(0.5 + 0.5 * f, m), cancel=cancel)
        progress(1.0, "done")
        return [out] + extra
    if fmt in ("nifti", "nrrd"):
        from formats.io import write_labelmap

        write_labelmap(req.labelmap, out)
        return [out]
    if fmt in ("stl", "obj"):
        return _meshes(req, out, fmt, progress, cancel)
    if fmt == "gltf":
        from export.snapshot import write_gltf

        if not req.labelmap.present_values():
            raise DelineateError("no segment to export: the label map is empty")
        with atomic_output(out) as tmp:
            write_gltf(req.labelmap, tmp)
        return [out]
    rows = segment_statistics(req.volume, req.labelmap, req.ai)
    if fmt == "stats":
        with atomic_output(out) as tmp:
            tmp.write_text(statistics_text(rows, out.suffix.lower(), req.measurements))
        if req.measurements and out.suffix.lower() == ".csv":  # a second table: its own file beside
            from core.measurements import measurements_csv

            beside = out.with_name(out.name[:-4] + "-measurements.csv")
            with atomic_output(beside) as tmp:
                tmp.write_text(measurements_csv(req.measurements))
            return [out, beside]
        return [out]
    from export.report import ReportInfo, render_report
    from export.snapshot import render_surfaces

    flat = req.volume.is_planar  # a 2D image or loop has no 3D view to show: its space goes to the image
    if not flat:
        progress(0.2, "rendering the 3D view")
    snapshot = None if flat else render_surfaces(req.labelmap)
    check(cancel)
    progress(0.6, "laying out the report")
    desc = "" if req.deidentify else req.volume.description
    info = ReportInfo(patient="de-identified" if req.deidentify else (req.volume.metadata.get("patient") or "-"),
                      study=desc, reviewer=req.reviewer, state=req.state, model=req.model, case_id=req.case_id,
                      explanation=req.explanation, regions=dict(req.regions),
                      measurements=list(req.measurements),
                      notes=list(req.notes) + ([] if snapshot is not None or flat
                                               else ["3D view not rendered (no OpenGL)"]))
    render_report(info, req.volume, req.labelmap, rows, out, snapshot)
    progress(1.0, "done")
    return [out]


def _meshes(req: ExportRequest, folder: Path, fmt: str, progress, cancel) -> list[Path]:
    from scipy import ndimage

    from export.mesh import write_surface
    from surfaces.mesh import segment_surface, to_world

    folder = folder.with_suffix("") if folder.suffix.lower() in (".stl", ".obj") else folder
    folder.mkdir(parents=True, exist_ok=True)
    boxes = ndimage.find_objects(req.labelmap.array)
    labels = [lab for lab in req.labelmap.table if lab.value - 1 < len(boxes) and boxes[lab.value - 1] is not None]
    written = []
    for n, lab in enumerate(labels):
        check(cancel)
        surf = to_world(segment_surface(req.labelmap, lab.value, boxes[lab.value - 1]), req.labelmap.geometry)
        path = folder / f"{lab.value:03d}-{_safe(lab.name)}.{fmt}"
        with atomic_output(path) as tmp:
            write_surface(surf, tmp, lab.color)
        written.append(path)
        progress((n + 1) / len(labels), f"surface of {lab.name}")
    if not written:
        raise DelineateError("no segment to export: the label map is empty")
    return written
