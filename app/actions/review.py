"""Review: saving the AI draft and the corrected mask with provenance to the corrections store
(in review, approved or rejected with a reason), and retraining a model on the approved
corrections, promoted only when its held-out gain is beyond noise (core.promotion)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core.errors import DelineateError
from core.time_series import KEY as TIME_KEY, time_series_of
from core.progress import no_progress


@dataclass
class CorrectionRequest:
    """A snapshot of the case (copies: editing may go on while it is saved)."""
    volume: object
    ai: object
    corrected: object
    state: str
    reason: str
    reviewer: str
    model_id: str
    model_version: str
    edits: dict
    uncertainty: Optional[float]
    card: Optional[dict]


def correction_request(session, state: str, reviewer: str = "", reason: str = "") -> CorrectionRequest:
    """Snapshot the open case for ``save_correction`` (on the thread that owns the session)."""
    from store.corrections import STATES

    if session.volume is None or session.labelmap is None:
        raise DelineateError("nothing to save: open an image and segment it first")
    if state not in STATES:
        raise DelineateError(f"unknown review state {state!r}; one of {', '.join(STATES)}")
    if state == "rejected" and not reason.strip():
        raise DelineateError("a rejection needs a reason")
    run = session.run
    corrected = _snapshot(session.labelmap)
    ai = session.ai_draft(corrected, copy=_snapshot)  # corrected itself when nothing was edited
    # the card as it is now, so the case exports with it even after the model is removed
    card = dict(run.card.report_dict(), card=run.card.to_dict(), warnings=list(session.warnings)) \
        if run is not None else None
    edits = session.history.summary() if session.history else {}
    if session.interactions:  # objects accepted from prompts: which engine, how many prompts of each kind
        edits = dict(edits, interactive=[dict(i) for i in session.interactions])
    if session.measurements:  # rulers, angles, ROIs, RECIST axes: points in LPS mm and what they read
        from app.actions.measuring import rows
        edits = dict(edits, measurements=rows(session))
    volume = session.volume
    if (series := time_series_of(volume)) is not None:
        # the time point the correction was made on (0-based), and that time point's voxels alone:
        # stepping in time while the save runs swaps the shown volume's array
        edits = dict(edits, time_point=series.shown, time_points=series.count)
        if run is not None and session.run_time_point is not None:
            edits["model_time_point"] = session.run_time_point  # the voxels the AI draft was made from
        volume = copy.copy(volume)
        volume.metadata = {k: v for k, v in volume.metadata.items() if k != TIME_KEY}
    return CorrectionRequest(volume, ai, corrected, state, reason.strip(),
                             reviewer, run.card.id if run else "", run.card.version if run else "",
                             edits, case_uncertainty(session), card)


def case_uncertainty(session) -> Optional[float]:
    """What the store keeps and the worklist ranks cases by: the model run's one-pass uncertainty
    (inference.envelope.run_uncertainty: the measure every run has, that the guard checks against
    the card's held-out cases and that the calibration plots against Dice). It was the uncertainty
    map's case value, left blank for a case nobody explained and on another scale (TTA) where
    someone did. A case reopened from the store without a run keeps its map's."""
    run = session.run
    sample = getattr(run, "sample", None)
    if sample is None:
        return session.uncertainty
    from inference.envelope import run_uncertainty

    return round(run_uncertainty(sample), 5)


def _snapshot(lm):
    """A copy of the label map's voxels under the same table and grid. Not LabelMap.copy(): that
    scans the copy for values the table lacks (half a second on a 512x512x300 map, twice a save);
    the store completes both tables from its own pass over the maps (store.corrections)."""
    snap = copy.copy(lm)  # a dataclass's copy.copy skips __post_init__'s scan
    snap.array = lm.array.copy()
    return snap


def save_correction(req: CorrectionRequest, root: Optional[Path] = None, progress=no_progress,
                    cancel=None) -> tuple[str, int]:
    """Write the correction; returns (case id, correction number). Opens its own store connection,
    so it may run in any thread."""
    from store.corrections import CorrectionsStore

    progress(0.0, "saving the correction")
    with CorrectionsStore(root) as store:
        saved = store.save(req.volume, req.ai, req.corrected, reviewer=req.reviewer, model_id=req.model_id,
                           model_version=req.model_version, edits=req.edits, state=req.state, reason=req.reason,
                           uncertainty=req.uncertainty, card=req.card)
    progress(1.0, "saved")
    return saved


def retrain_base(session, registry=None):
    """The model to fine-tune: the one that made the draft on screen, else the image's default."""
    from app.actions.models import default_model

    if session.run is not None:
        return session.run.card
    if session.volume is None:
        raise DelineateError("open an image or run a model first: retraining starts from a model")
    return default_model(session.volume, registry)


def retrain(base, root: Optional[Path] = None, out_root: Optional[Path] = None, iterations: int = 200,
            progress=no_progress, cancel=None, registry=None):
    """Fine-tune ``base`` on the store's approved corrections; the new version's card, promoted to
    default only if its held-out Dice gain is beyond noise."""
    from inference.registry import Registry, user_models_dir
    from inference.training.from_store import retrain as fine_tune
    from store.corrections import CorrectionsStore

    versions = [c.version for c in (registry or Registry()).versions(base.id)]
    with CorrectionsStore(root) as store:
        return fine_tune(store, base, Path(out_root) if out_root else user_models_dir(), iterations, progress, cancel,
                         log=lambda m: None, versions=versions)


def retrain_interactive(root: Optional[Path] = None, out_root: Optional[Path] = None, steps: int = 200,
                        progress=no_progress, cancel=None) -> dict:
    """Fine-tune the promptable network on the store's approved corrections; the new version's card
    (a dict), used by the network engine only if its held-out DSC AUC gain is beyond noise."""
    from inference.interactive.from_store import retrain as fine_tune
    from store.corrections import CorrectionsStore

    with CorrectionsStore(root) as store:
        return fine_tune(store, Path(out_root) if out_root else None, steps=steps, progress=progress,
                         cancel=cancel, log=lambda m: None)


def retrain_interactive_summary(card: dict) -> str:
    m = {x["name"]: x["value"] for x in card["metrics"]}
    text = (f"promptable-net v{card['version']} (from v{card['parent_version']}): held-out DSC AUC "
            f"{m['DSC AUC before (parent)']:.3f} -> {m['DSC AUC after']:.3f} (change "
            f"{m['DSC AUC change (paired mean)']:+.3f}, 95 % CI {m['DSC AUC change 95% CI low']:+.3f} to "
            f"{m['DSC AUC change 95% CI high']:+.3f} over {m['Held-out objects']:.0f} held-out objects), in "
            f"{card['folder']}.\n")
    return text + ("The network engine now uses it." if card["promoted"] else
                   "It is kept but NOT used: " + card["limits"].rsplit("NOT promoted: ", 1)[-1])


def retrain_summary(card) -> str:
    """What the retrain dialog and the CLI say about a new version."""
    m = {x.name: x.value for x in card.metrics}
    text = (f"{card.id} v{card.version} (from v{card.parent_version}): held-out Dice "
            f"{m['Dice mean before (parent)']:.3f} -> {m['Dice mean after']:.3f} (change "
            f"{m['Dice change (paired mean)']:+.3f}, 95 % CI {m['Dice change 95% CI low']:+.3f} to "
            f"{m['Dice change 95% CI high']:+.3f} over {m['Held-out cases']:.0f} held-out cases).\n")
    return text + ("It is now the default model." if card.promoted else
                   "It is kept but NOT the default: " + card.notes.rsplit("NOT promoted: ", 1)[-1])

