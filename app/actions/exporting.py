"""Exporting a reviewed case: find it (an image with its label maps, or a store case by id prefix,
re-linked to its original DICOM when given) and write it in one of export.case's formats.

``load_case`` gathers what the export needs into a ``CaseExport``; ``export_case`` describes the
model (the card snapshot the store kept, or the registry's card) and writes the files, all or
nothing. torch is imported only for a fractional SEG without the run's probabilities, which runs
the model again."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import DelineateError
from core.labels import LabelMap
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.volume import Volume


@dataclass
class CaseExport:
    """One case as an export sees it."""
    volume: Volume
    labelmap: LabelMap  # the corrected segmentation, on the volume's grid
    ai: Optional[LabelMap] = None  # the AI's draft, for agreement statistics
    model_ref: Optional[str] = None  # "id[/version]" of the model that made the draft
    snapshot: Optional[dict] = None  # that model's card as the store kept it when the case was saved
    model_named: bool = False  # the user named the model (a missing one is then an error)
    reviewer: str = ""
    state: str = ""
    case_id: str = ""
    probabilities: Optional[object] = None  # (C, z, y, x) foreground probabilities of the run, for a fractional SEG
    # (or a function giving them: a run makes them on the image grid when first asked, in the export's worker)
    regions: Optional[dict] = None  # report key images: "edited", "uncertain" boxes (None: from ai vs labelmap)
    measurements: Optional[list] = None  # the reader's rulers, angles, ROIs, RECIST (core.measurements.row)


def find_case(store, prefix: str):
    """The store case whose id starts with ``prefix``; refused when none or several match."""
    matches = [c for c in store.cases() if c.id.startswith(prefix)] if prefix else []
    if len(matches) != 1:
        raise DelineateError(f"{prefix!r} is neither a file nor {'a unique' if matches else 'a'} store case id")
    return matches[0]


def case_from_image(image, labels, ai=None, *, model: Optional[str] = None, reviewer: str = "",
                    series: Optional[str] = None, progress: Optional[ProgressFn] = None,
                    cancel: Optional[CancelToken] = None) -> CaseExport:
    """An image file or folder with its corrected label map (and optionally the AI's draft)."""
    from formats.io import read_image, read_labelmap

    if not labels:
        raise DelineateError("exporting an image needs --labels (the label map to export)")
    vol = read_image(image, progress or no_progress, series=series)
    check(cancel)
    fixed = read_labelmap(labels, vol)
    return CaseExport(vol, fixed, read_labelmap(ai, vol) if ai else None, model_ref=model, model_named=bool(model),
                      reviewer=reviewer or "")


def case_from_store(case_id: str, root=None, *, source=None, model: Optional[str] = None,
                    reviewer: Optional[str] = None, series: Optional[str] = None,
                    progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> CaseExport:
    """A store case by id (or unique id prefix), with its latest correction and the model's card as
    kept then; with ``source`` (its original DICOM) the export references those instances."""
    from store.corrections import CorrectionsStore

    with CorrectionsStore(root or None) as store:  # a folder or a postgresql:// URL
        case = find_case(store, case_id)
        vol, ai, fixed = store.load(case.id)
        latest = store.latest(case.id)
    check(cancel)
    if source:
        vol = relink(vol, [fixed, ai], source, case.image_hash, case.id, series=series, progress=progress)
    stored_ref = f"{latest['model_id']}/{latest['model_version']}" if latest.get("model_id") else None
    return CaseExport(vol, fixed, ai, model_ref=model or stored_ref, snapshot=None if model else latest.get("card"),
                      model_named=bool(model), reviewer=reviewer or latest.get("reviewer") or "",
                      state=case.state, case_id=case.id, measurements=latest["edits"].get("measurements"))


def relink(volume: Volume, labelmaps, source, expected_hash: str, case_id: str = "", *,
           series: Optional[str] = None, progress: Optional[ProgressFn] = None) -> Volume:
    """The original image ``source`` in place of the stored copy, so DICOM exports reference its
    instances; refused unless its voxels are the case's (checked by content, not by name). The
    label maps move onto the original's geometry object."""
    from formats.io import read_image
    from store.corrections import image_hash

    original = read_image(source, progress or no_progress, series=series)
    if image_hash(original) != expected_hash:
        raise DelineateError(f"{source} is not the image of case {case_id or expected_hash[:12]} (content differs)")
    for lm in labelmaps:
        if lm is not None:
            lm.geometry = original.geometry
    return original


def load_case(case: str, *, labels=None, ai=None, model: Optional[str] = None, reviewer: Optional[str] = None,
              source=None, series: Optional[str] = None, store=None, progress: Optional[ProgressFn] = None,
              cancel: Optional[CancelToken] = None) -> CaseExport:
    """``case`` is an existing image file/folder (give ``labels``) or else a store case id prefix."""
    if Path(case).exists():
        return case_from_image(case, labels, ai, model=model, reviewer=reviewer or "", series=series,
                               progress=progress, cancel=cancel)
    return case_from_store(case, store, source=source, model=model, reviewer=reviewer, series=series,
                           progress=progress, cancel=cancel)


def _model(case: CaseExport, need_card: bool):
    """(registry card or None, the model's description for the export)."""
    if not case.model_ref or (case.snapshot is not None and not need_card):
        return None, case.snapshot
    from inference.registry import Registry

    model_id, _, version = case.model_ref.partition("/")
    try:
        card = Registry().get(model_id, version or None)
    except DelineateError:
        if case.model_named or need_card:
            raise
        # a store case from before card snapshots, whose model is gone: what the store knows
        return None, {"id": model_id, "version": version, "name": f"{model_id} (no longer registered)"}
    return card, card.report_dict()


def export_case(fmt: str, case: CaseExport, out, *, fractional: bool = False, deidentify: bool = False,
                compress: bool = False, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None, explanation=None) -> list[Path]:
    """Write ``case`` as ``fmt`` (export.case.FORMATS) to ``out``; returns every file written, the
    main one first. A fractional SEG uses the run's probabilities, or runs the case's model again."""
    from export.case import ExportRequest, export

    progress = progress or no_progress
    rerun = fractional and case.probabilities is None
    card, model = _model(case, need_card=rerun)
    probs = (case.probabilities() if callable(case.probabilities) else case.probabilities) if fractional else None
    if rerun:
        if card is None:
            raise DelineateError("a fractional SEG holds a model's probabilities: name the model with --model")
        from inference.runner import segment

        probs = segment(case.volume, card, progress, cancel).probabilities[1:]
    req = ExportRequest(fmt, case.volume, case.labelmap, Path(out), ai=case.ai, probabilities=probs,
                        deidentify=deidentify, compress=compress, model=model, reviewer=case.reviewer,
                        state=case.state, case_id=case.case_id, explanation=explanation,
                        regions=report_regions(case) if fmt == "report" else {},
                        measurements=list(case.measurements or []))
    return export(req, progress, cancel)


def report_regions(case: CaseExport) -> dict:
    """Where the report's key images go: the box of the reviewer's edits (the session's, else
    wherever the AI draft and the corrected mask differ) and the most uncertain region's."""
    regions = dict(case.regions or {})
    if "edited" not in regions and case.ai is not None:
        box = _box(case.ai.array != case.labelmap.array)
        if box is not None:
            regions["edited"] = box
    return regions


def _box(mask) -> Optional[list]:
    """(z, y, x) [start, stop) pairs around every True voxel, or None."""
    from scipy import ndimage

    found = ndimage.find_objects(mask.astype(np.uint8))
    return [[s.start, s.stop] for s in found[0]] if found else None


def _run_uncertain_box(session) -> Optional[list]:
    """The most uncertain region of the run's own probabilities (normalised entropy >= 0.5 on the
    uncertainty map the run keeps, on the model's grid), as an index box of the image: the report
    of a case whose run the guard called unsure showed no uncertain region unless someone had made
    an uncertainty map."""
    run = session.run
    if run is None or getattr(run, "uncertainty_map", None) is None or run.labels.geometry is not session.volume.geometry:
        return None
    from core.resample import box_edges
    from inference.xai import uncertain_regions

    entropy, grid = run.uncertainty_map
    found = uncertain_regions(entropy, 0.5, min_voxels=27 if entropy.shape[0] > 1 else 9, spacing_xyz=grid.spacing)
    if not found:
        return None
    lo, hi = box_edges(tuple(slice(a, b) for a, b in found[0]["bbox_zyx"]), grid, session.volume.geometry)
    size = session.volume.geometry.shape_zyx[::-1]  # x, y, z as the indices
    return [[int(np.clip(np.floor(lo[a] + 0.5), 0, size[a] - 1)), int(np.clip(np.ceil(hi[a] + 0.5), 1, size[a]))]
            for a in range(3)][::-1]


def _session_regions(session) -> dict:
    """The box of this session's edits (undone ones excluded) and the most uncertain region: of an
    uncertainty map on screen, else of the run's own probabilities."""
    regions = {}
    from core.editing import union_box

    edited = union_box([e.box for e in (session.history.done if session.history else [])])
    if edited[0].stop > edited[0].start:
        regions["edited"] = [[b.start, b.stop] for b in edited]
    heat = next((h for h in session.viewer.heatmaps if h.name.startswith("Uncertainty")), None)
    if heat is not None and heat.geometry.same_grid(session.volume.geometry, tol=1e-4):
        from inference.xai import uncertain_regions

        values = heat.vmin + heat.codes.astype(np.float32) * ((heat.vmax - heat.vmin) / 255.0)
        found = uncertain_regions(values, 0.5, min_voxels=27 if values.shape[0] > 1 else 9,
                                  spacing_xyz=session.volume.geometry.spacing)
        if found:
            regions["uncertain"] = found[0]["bbox_zyx"]
    elif (box := _run_uncertain_box(session)) is not None:
        regions["uncertain"] = box
    return regions


def _measurement_rows(session) -> list:
    from app.actions.measuring import rows

    return rows(session)


def case_from_session(session, reviewer: str = "") -> CaseExport:
    """The case on screen (copies: editing may go on), with the run's probabilities for a
    fractional SEG."""
    if session.volume is None or session.labelmap is None:
        raise DelineateError("nothing to export: open an image and segment it first")
    lm, run, ai = session.labelmap, session.run, session.ai_draft()
    # a store case opened and not saved again in this session: the state and reviewer it was saved with
    meta = session.volume.metadata or {}
    stored = meta if session.store_case and meta.get("store_case") == session.store_case else {}
    return CaseExport(session.volume, lm.copy(), ai=None if ai is lm else ai.copy(),
                      model_ref=f"{run.card.id}/{run.card.version}" if run else None,
                      snapshot=dict(run.card.report_dict(), warnings=list(session.warnings)) if run else None,
                      reviewer=reviewer or stored.get("store_reviewer", ""),
                      state=session.review_state or stored.get("store_state", ""), case_id=session.store_case or "",
                      probabilities=(lambda: run.probabilities[1:]) if run is not None else None,
                      regions=_session_regions(session), measurements=_measurement_rows(session))
