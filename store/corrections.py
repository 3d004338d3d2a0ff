"""The corrections store: what physicians corrected, with provenance, never a patient identifier.

Layout (default under the user data dir, or $DELINEATE_STORE)::

    index.sqlite                  SQLite in WAL mode: cases and their saved corrections
    cases/<case>/image.nii.gz     the image, de-identified (voxels and geometry only)
    cases/<case>/ai-<n>.seg.nrrd  the model's mask as saved with correction n
    cases/<case>/fix-<n>.seg.nrrd the corrected mask n

A save writes its files first (atomically: temp, fsync, rename, under names never reused), then
commits one transaction that points to them; a process killed at any moment leaves the previous
version intact and the index readable. Only content hashes, model ids, label tables, metrics,
states, reviewer names and times are indexed - no names, IDs, dates of birth or accession numbers.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import DelineateError
from core.labels import LabelMap
from core.metrics import compare_labelmaps, finite_or_none
from core.volume import Volume

STATES = ("ai_draft", "in_review", "approved", "rejected")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY, image_hash TEXT UNIQUE NOT NULL, modality TEXT, size TEXT, spacing TEXT,
    state TEXT NOT NULL, reason TEXT, model_id TEXT, model_version TEXT, uncertainty REAL,
    split TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL REFERENCES cases(id), n INTEGER NOT NULL,
    ai_file TEXT NOT NULL, fixed_file TEXT NOT NULL, reviewer TEXT, saved TEXT NOT NULL,
    model_id TEXT, model_version TEXT, edits TEXT, metrics TEXT, state TEXT NOT NULL);
"""


def default_root() -> Path:
    env = os.environ.get("DELINEATE_STORE")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("Delineate", "Delineate")) / "store"


def image_hash(volume: Volume) -> str:
    """Identity of an image by content: voxels and geometry, not file names or headers."""
    h = hashlib.sha256()
    g = volume.geometry
    h.update(json.dumps([list(g.size), g.spacing.round(6).tolist(), g.origin.round(4).tolist(),
                         g.direction.round(6).tolist(), str(volume.array.dtype)]).encode())
    h.update(np.ascontiguousarray(volume.array).data)
    return h.hexdigest()


def deidentified(volume: Volume) -> Volume:
    """Voxels, geometry and modality only: DICOM metadata, descriptions and source paths dropped."""
    return Volume(volume.array, volume.geometry, modality=volume.modality)


@dataclass
class Case:
    id: str
    image_hash: str
    modality: str
    size: str
    spacing: str
    state: str
    reason: str
    model_id: str
    model_version: str
    uncertainty: Optional[float]
    split: str
    created: str
    updated: str


class CorrectionsStore:
    def __init__(self, root: Optional[Path] = None, holdout_fraction: float = 0.2) -> None:
        self.root = Path(root) if root is not None else default_root()
        (self.root / "cases").mkdir(parents=True, exist_ok=True)
        self.holdout_fraction = holdout_fraction
        self.db = sqlite3.connect(self.root / "index.sqlite", timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- saving --------------------------------------------------------------------------------
    def _split(self, h: str) -> str:
        """Train or held-out, fixed by the image's hash: the same case keeps its side across
        retraining rounds, so before/after figures stay comparable."""
        return "holdout" if int(h[:8], 16) / 0xFFFFFFFF < self.holdout_fraction else "train"

    def save(self, volume: Volume, ai: LabelMap, corrected: LabelMap, *, reviewer: str = "",
             model_id: str = "", model_version: str = "", edits: Optional[dict] = None,
             state: str = "in_review", reason: str = "", uncertainty: Optional[float] = None) -> tuple[str, int]:
        """Save a correction (files first, then one transaction). Returns (case id, correction n)."""
        from formats.io import write_image, write_labelmap

        if state not in STATES:
            raise DelineateError(f"state must be one of {STATES}")
        for lm in (ai, corrected):
            if not lm.geometry.same_grid(volume.geometry, tol=1e-4):
                raise DelineateError("masks must share the image's grid")
        h = image_hash(volume)
        row = self.db.execute("SELECT id FROM cases WHERE image_hash = ?", (h,)).fetchone()
        case_id = row[0] if row else uuid.uuid4().hex[:16]
        folder = self.root / "cases" / case_id
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "image.nii.gz").exists():
            write_image(deidentified(volume), folder / "image.nii.gz")
        n = (self.db.execute("SELECT COALESCE(MAX(n), 0) FROM corrections WHERE case_id = ?", (case_id,))
             .fetchone()[0]) + 1
        token = uuid.uuid4().hex[:8]  # names are never reused, even by a save that was killed
        ai_file, fixed_file = f"ai-{n}-{token}.seg.nrrd", f"fix-{n}-{token}.seg.nrrd"
        write_labelmap(ai, folder / ai_file)
        write_labelmap(corrected, folder / fixed_file)
        metrics = {str(c.value): {"name": c.name, "dice": c.dice, "hd95_mm": finite_or_none(c.hausdorff95_mm),
                                  "ai_ml": c.volume_a_ml, "corrected_ml": c.volume_b_ml}
                   for c in compare_labelmaps(ai, corrected)}
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with self.db:  # one transaction: the case row and the correction row, or neither
            if row is None:
                g = volume.geometry
                self.db.execute("INSERT INTO cases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                (case_id, h, volume.modality, json.dumps(list(g.size)),
                                 json.dumps(g.spacing.round(6).tolist()), state, reason, model_id, model_version,
                                 uncertainty, self._split(h), now, now))
            else:
                self.db.execute("UPDATE cases SET state=?, reason=?, model_id=?, model_version=?, "
                                "uncertainty=COALESCE(?, uncertainty), updated=? WHERE id=?",
                                (state, reason, model_id, model_version, uncertainty, now, case_id))
            self.db.execute("INSERT INTO corrections (case_id, n, ai_file, fixed_file, reviewer, saved, model_id, "
                            "model_version, edits, metrics, state) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (case_id, n, ai_file, fixed_file, reviewer, now, model_id, model_version,
                             json.dumps(edits or {}), json.dumps(metrics), state))
        return case_id, n

    def set_state(self, case_id: str, state: str, reason: str = "") -> None:
        if state not in STATES:
            raise DelineateError(f"state must be one of {STATES}")
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with self.db:
            self.db.execute("UPDATE cases SET state=?, reason=?, updated=? WHERE id=?", (state, reason, now, case_id))

    # -- reading -------------------------------------------------------------------------------
    def cases(self, state: Optional[str] = None) -> list[Case]:
        q = "SELECT * FROM cases" + (" WHERE state = ?" if state else "") + " ORDER BY updated DESC"
        return [Case(*r) for r in self.db.execute(q, (state,) if state else ())]

    def latest(self, case_id: str) -> dict:
        r = self.db.execute("SELECT n, ai_file, fixed_file, reviewer, saved, model_id, model_version, edits, "
                            "metrics, state FROM corrections WHERE case_id = ? ORDER BY n DESC LIMIT 1",
                            (case_id,)).fetchone()
        if r is None:
            raise DelineateError(f"no correction saved for case {case_id}")
        keys = ("n", "ai_file", "fixed_file", "reviewer", "saved", "model_id", "model_version", "edits", "metrics",
                "state")
        d = dict(zip(keys, r))
        d["edits"], d["metrics"] = json.loads(d["edits"]), json.loads(d["metrics"])
        return d

    def load(self, case_id: str, n: Optional[int] = None):
        """(image Volume, AI LabelMap, corrected LabelMap) of a case's correction n (default latest)."""
        from formats.io import read_image, read_labelmap

        info = self.latest(case_id) if n is None else self._correction(case_id, n)
        folder = self.root / "cases" / case_id
        image = read_image(folder / "image.nii.gz")
        return image, read_labelmap(folder / info["ai_file"], image), read_labelmap(folder / info["fixed_file"], image)

    def _correction(self, case_id: str, n: int) -> dict:
        r = self.db.execute("SELECT ai_file, fixed_file FROM corrections WHERE case_id = ? AND n = ?",
                            (case_id, n)).fetchone()
        if r is None:
            raise DelineateError(f"case {case_id} has no correction {n}")
        return {"ai_file": r[0], "fixed_file": r[1]}

    def check(self) -> list[str]:
        """Problems found (empty: healthy): SQLite integrity and every indexed file present."""
        problems = [r[0] for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        for case_id, ai_file, fixed_file in self.db.execute("SELECT case_id, ai_file, fixed_file FROM corrections"):
            for f in (ai_file, fixed_file):
                if not (self.root / "cases" / case_id / f).is_file():
                    problems.append(f"missing {case_id}/{f}")
        return problems
