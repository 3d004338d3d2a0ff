"""The corrections store: what physicians corrected, with provenance, never a patient identifier.

Layout (default under the user data dir, or $DELINEATE_STORE: a folder, or a PostgreSQL URL for a
team, store.location)::

    index.sqlite                  SQLite in WAL mode: cases and their saved corrections
                                  (a team store: these tables in PostgreSQL, the files below in
                                  the shared folder named by the URL's ``files=``)
    cases/<case>/image.nii.gz     the image, de-identified (voxels and geometry only)
    cases/<case>/ai-<n>-<token>.seg.nrrd  the model's mask as saved with correction n
    cases/<case>/fix-<n>-<token>.seg.nrrd the corrected mask n

A save holds the index's write lock (BEGIN IMMEDIATE) while it writes its files (atomically: temp,
fsync, rename, under names never reused; a new case's image just before, checked again under the
lock) and commits the one transaction that points to them; a
process killed at any moment leaves the previous version intact and the index readable, plus at
most some unreferenced files, which check() reports and repair() removes (under the same lock, so
never the files of a save in progress). Only content hashes, model ids and card snapshots, label
tables, metrics, states, reviewer names, times and the source's identity-free metadata
(store.source_meta) are indexed - no names, IDs, dates of birth or accession numbers.

Open it as a context manager (``with CorrectionsStore(root) as st:``): the connection closes
however the block ends. Rows are read by column name, and the schema carries its version
(PRAGMA user_version; delineate_meta in PostgreSQL); a store written by an earlier release is
migrated when it is opened. The SQL is the same on both backends (store.backend_sqlite,
store.backend_postgres hold what differs: connection, write lock, version, a few type names);
the team features - assignment, case locks, the audit trail - are in store.team.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import DelineateError
from core.labels import LabelMap
from core.metrics import compare_labelmaps, finite_or_none, label_diff
from core.volume import Volume, WindowPreset
from store.location import default_location, resolve
from store.team import CaseLocked, TeamFeatures

__all__ = ["CaseLocked", "CorrectionsStore", "Case", "STATES", "SCHEMA_VERSION", "default_root", "image_hash"]

STATES = ("ai_draft", "in_review", "approved", "rejected")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY, image_hash TEXT UNIQUE NOT NULL, modality TEXT, size TEXT, spacing TEXT,
    state TEXT NOT NULL, reason TEXT, model_id TEXT, model_version TEXT, uncertainty {real},
    split TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
    id {serial}, case_id TEXT NOT NULL REFERENCES cases(id), n INTEGER NOT NULL,
    ai_file TEXT NOT NULL, fixed_file TEXT NOT NULL, reviewer TEXT, saved TEXT NOT NULL,
    model_id TEXT, model_version TEXT, edits TEXT, metrics TEXT, state TEXT NOT NULL);
"""
# schema version -> statements that bring the previous version up to it ({serial}, {real}: the
# backend's words for them)
_MIGRATIONS = {
    2: ("ALTER TABLE cases ADD COLUMN source_meta TEXT",  # store.source_meta.identity_free
        "ALTER TABLE corrections ADD COLUMN card TEXT"),  # the model card as it was at the save
    3: ("ALTER TABLE cases ADD COLUMN assignee TEXT",  # team work (store.team)
        "CREATE TABLE IF NOT EXISTS locks (case_id TEXT PRIMARY KEY REFERENCES cases(id), holder TEXT NOT NULL, "
        "host TEXT NOT NULL, pid INTEGER NOT NULL, token TEXT NOT NULL, taken TEXT NOT NULL, "
        "heartbeat {real} NOT NULL, expires {real} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS audit (id {serial}, case_id TEXT NOT NULL, at TEXT NOT NULL, "
        "actor TEXT NOT NULL, login TEXT NOT NULL, host TEXT NOT NULL, action TEXT NOT NULL, "
        "old_state TEXT, new_state TEXT, detail TEXT)",
        "CREATE INDEX IF NOT EXISTS audit_case ON audit (case_id, id)"),
}
SCHEMA_VERSION = max(_MIGRATIONS)
_CASE_FIELDS = ("id", "image_hash", "modality", "size", "spacing", "state", "reason", "model_id", "model_version",
                "uncertainty", "split", "created", "updated", "source_meta", "assignee")
_CASE_COLUMNS = ", ".join(_CASE_FIELDS)
_CORRECTION_FIELDS = ("n", "ai_file", "fixed_file", "reviewer", "saved", "model_id", "model_version", "edits",
                      "metrics", "state", "card")
_TEMP_PREFIX = ".delineate-"  # formats.atomic's temp folders


def default_root():
    """The default store: a folder (Path) or a PostgreSQL URL (str), from $DELINEATE_STORE."""
    return default_location()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


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


def _completed(lm: LabelMap, counts: dict) -> LabelMap:
    """``lm`` with a default entry for each value its voxels hold (``counts``, from the save's own
    pass over them) that its table lacks, as LabelMap() would give it: app.actions.review passes
    snapshots that skipped that scan."""
    missing = [v for v in counts if lm.table.get(v) is None]
    if not missing:
        return lm
    out = copy.copy(lm)
    out.table = lm.table.completed_for(missing)
    return out


def _plane_flags(plane: dict) -> dict:
    """Volume fields from store.source_meta's "plane" record (absent: a 3D image with known geometry)."""
    ft = plane.get("frame_time_ms")
    return {"spacing_known": bool(plane.get("spacing_known", True)),
            "orientation_known": bool(plane.get("orientation_known", True)),
            "frame_time_ms": float(ft) if isinstance(ft, (int, float)) and ft > 0 else None}


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
    source_meta: dict
    assignee: str = ""  # the reviewer it is assigned to ("": nobody)
    locked_by: str = ""  # "reviewer on host" while someone holds its lock (store.team)
    reviewer: str = ""  # who saved its latest correction
    saved: str = ""  # when its latest correction was saved (``updated`` also moves on a state change)

    @classmethod
    def from_row(cls, row) -> "Case":
        fields = {name: row[name] for name in _CASE_FIELDS}
        fields["source_meta"] = json.loads(fields["source_meta"]) if fields["source_meta"] else {}
        fields["assignee"] = fields["assignee"] or ""
        holder = row["lock_holder"] if "lock_holder" in row.keys() else None
        fields["locked_by"] = f"{holder} on {row['lock_host']}" if holder else ""
        keys = row.keys()
        fields["reviewer"] = (row["last_reviewer"] if "last_reviewer" in keys else "") or ""
        fields["saved"] = (row["last_saved"] if "last_saved" in keys else "") or ""
        return cls(**fields)


class CorrectionsStore(TeamFeatures):
    """``root``: a store folder, a ``postgresql://...?files=/shared/folder`` URL (store.location), or
    None for $DELINEATE_STORE / the user's store. ``lock_timeout``: seconds a case lock taken
    through this connection outlives its last heartbeat (store.team)."""

    def __init__(self, root=None, holdout_fraction: float = 0.2, lock_timeout: Optional[float] = None) -> None:
        self.location = resolve(root)
        self.url = self.location.url
        self.root = self.location.files
        self.holdout_fraction = holdout_fraction
        self.lock_timeout = float(lock_timeout if lock_timeout is not None
                                  else os.environ.get("DELINEATE_LOCK_TIMEOUT", 120))
        if self.url is not None:
            if not self.root.is_dir():  # a share that is not mounted must not become an empty local folder
                raise DelineateError(f"{self.location.shown}: the shared folder {self.root} does not exist "
                                     "(is the share mounted here?)")
            (self.root / "cases").mkdir(exist_ok=True)
            from store.backend_postgres import PostgresIndex

            self.index = PostgresIndex(self.location.conninfo, self.location.shown)
        else:
            (self.root / "cases").mkdir(parents=True, exist_ok=True)
            from store.backend_sqlite import SqliteIndex

            self.index = SqliteIndex(self.root)
        self.db = self.index.db  # the raw connection (sqlite3 or psycopg), for checks and tests
        try:
            if self.index.version() != SCHEMA_VERSION:
                with self.index.writing():
                    if self.index.version() != SCHEMA_VERSION:  # another client may have migrated meanwhile
                        self._create_and_migrate()
        except DelineateError:
            self.index.close()
            raise
        except Exception as exc:
            self.index.close()
            if self.url is None and type(exc).__module__ == "sqlite3":
                raise DelineateError(f"{self.index.where}: cannot open the store's index ({exc})") from None
            raise

    def _sql(self, statement: str) -> str:
        return statement.format(serial=self.index.serial, real=self.index.real)

    def _create_and_migrate(self) -> None:
        version = self.index.version()
        if version > SCHEMA_VERSION:
            raise DelineateError(f"{self.location.shown}: this store was written by a newer Delineate "
                                 f"(schema {version})")
        for statement in _SCHEMA.split(";"):  # one by one: executescript would commit the transaction
            if statement.strip():
                self.index.execute(self._sql(statement))
        if version == 0:  # version 1 had no user_version; a fresh store has just been given its tables
            version = 1
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                self.index.execute(self._sql(statement))
        self.index.set_version(SCHEMA_VERSION)

    def schema_version(self) -> int:
        return self.index.version()

    def _writing(self):
        return self.index.writing()

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> "CorrectionsStore":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- saving --------------------------------------------------------------------------------
    def _split(self, h: str) -> str:
        """Train or held-out, fixed by the image's hash: the same case keeps its side across
        retraining rounds, so before/after figures stay comparable."""
        return "holdout" if int(h[:8], 16) / 0xFFFFFFFF < self.holdout_fraction else "train"

    def save(self, volume: Volume, ai: LabelMap, corrected: LabelMap, *, reviewer: str = "",
             model_id: str = "", model_version: str = "", edits: Optional[dict] = None,
             state: str = "in_review", reason: str = "", uncertainty: Optional[float] = None,
             card: Optional[dict] = None, source_meta: Optional[dict] = None,
             lock_token: Optional[str] = None) -> tuple[str, int]:
        """Save a correction: its files, then the one transaction pointing to them, under the write
        lock (a new case's image is written just before). ``card``: the model card as plain data (kept so the case exports after the
        model is gone); ``source_meta``: store.source_meta.identity_free(volume) when the caller
        has it (else it is derived here for a new case). A case someone else holds the lock of is
        refused (CaseLocked): ``lock_token`` is the caller's lock, if it took one in another
        process or connection (store.team). The save and its state change enter the audit
        trail. Returns (case id, correction n)."""
        from formats.io import write_image, write_labelmap
        from store.source_meta import identity_free

        if state not in STATES:
            raise DelineateError(f"state must be one of {STATES}")
        for lm in (ai, corrected):
            if not lm.geometry.same_grid(volume.geometry, tol=1e-4):
                raise DelineateError("masks must share the image's grid")
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="delineate-save") as pool:
            # hashing and gzip let go of the GIL: the image is hashed and written while the maps are compared
            hashing = pool.submit(image_hash, volume)
            diff = label_diff(ai.array, corrected.array)
            h = hashing.result()
            known = self.index.one("SELECT id FROM cases WHERE image_hash = ?", (h,))
            image = None
            if known is None:  # the slow part of a new case before taking the lock: a big image takes seconds
                new_id = uuid.uuid4().hex[:16]
                image = pool.submit(write_image, deidentified(volume), self.root / "cases" / new_id / "image.nii.gz")
                if source_meta is None:
                    source_meta = identity_free(volume)
            else:
                self._check_not_locked(known["id"], lock_token)  # early, before the masks are written
            ai, corrected = _completed(ai, diff.counts_a), _completed(corrected, diff.counts_b)
            metrics = {str(c.value): {"name": c.name, "dice": c.dice, "hd95_mm": finite_or_none(c.hausdorff95_mm),
                                      "ai_ml": c.volume_a_ml, "corrected_ml": c.volume_b_ml}
                       for c in compare_labelmaps(ai, corrected, diff)}
            if image is not None:
                with contextlib.suppress(OSError):  # a repair() removing it meanwhile: written again under the lock
                    image.result()
        with self._writing():  # one transaction: the case row and the correction row, or neither
            row = self.index.one("SELECT id, state FROM cases WHERE image_hash = ?", (h,))
            case_id = row["id"] if row else (new_id if known is None else uuid.uuid4().hex[:16])
            if known is None and case_id != new_id:  # another saver made the case meanwhile: ours is litter
                shutil.rmtree(self.root / "cases" / new_id, ignore_errors=True)
            if row is not None:
                self._check_not_locked(case_id, lock_token)
            folder = self.root / "cases" / case_id
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "image.nii.gz").exists():  # written above unless a repair() came between
                write_image(deidentified(volume), folder / "image.nii.gz")
            n = self.index.one("SELECT COALESCE(MAX(n), 0) AS n FROM corrections WHERE case_id = ?", (case_id,))["n"] + 1
            token = uuid.uuid4().hex[:8]  # names are never reused, even by a save that was killed
            ai_file, fixed_file = f"ai-{n}-{token}.seg.nrrd", f"fix-{n}-{token}.seg.nrrd"
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="delineate-save") as pool:
                list(pool.map(write_labelmap, (ai, corrected), (folder / ai_file, folder / fixed_file)))
            now = _now()
            if row is None:
                g = volume.geometry
                meta = source_meta if source_meta is not None else identity_free(volume)
                self.index.execute(f"INSERT INTO cases ({', '.join(_CASE_FIELDS[:-1])}) "
                                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                   (case_id, h, volume.modality, json.dumps(list(g.size)),
                                    json.dumps(g.spacing.round(6).tolist()), state, reason, model_id, model_version,
                                    uncertainty, self._split(h), now, now, json.dumps(meta)))
            else:
                # a case reopened from the store is saved without a model run: it keeps its model
                self.index.execute("UPDATE cases SET state=?, reason=?, model_id=COALESCE(NULLIF(?, ''), model_id), "
                                   "model_version=COALESCE(NULLIF(?, ''), model_version), "
                                   "uncertainty=COALESCE(?, uncertainty), updated=? WHERE id=?",
                                   (state, reason, model_id, model_version, uncertainty, now, case_id))
            self.index.execute("INSERT INTO corrections (case_id, n, ai_file, fixed_file, reviewer, saved, model_id, "
                               "model_version, edits, metrics, state, card) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                               (case_id, n, ai_file, fixed_file, reviewer, now, model_id, model_version,
                                json.dumps(edits or {}), json.dumps(metrics), state,
                                json.dumps(card) if card else None))
            self._audit(case_id, "created" if row is None else "saved", reviewer, None if row is None else row["state"],
                        state, f"correction {n}" + (f": {reason}" if reason else ""), at=now)
        return case_id, n

    def set_state(self, case_id: str, state: str, reason: str = "", *, actor: str = "",
                  lock_token: Optional[str] = None) -> None:
        if state not in STATES:
            raise DelineateError(f"state must be one of {STATES}")
        now = _now()
        with self._writing():
            row = self.index.one("SELECT state FROM cases WHERE id = ?", (case_id,))
            if row is None:
                raise DelineateError(f"no case {case_id} in the store")
            self._check_not_locked(case_id, lock_token)
            self.index.execute("UPDATE cases SET state=?, reason=?, updated=? WHERE id=?", (state, reason, now, case_id))
            self._audit(case_id, "state", actor, row["state"], state, reason, at=now)

    # -- reading -------------------------------------------------------------------------------
    def _case_query(self, where: str = "") -> str:
        """Cases with the holder of a live lock, if any (store.team), and who saved the latest
        correction when."""
        cols = ", ".join(f"c.{f}" for f in _CASE_FIELDS)
        latest = "FROM corrections k WHERE k.case_id = c.id ORDER BY k.n DESC LIMIT 1"
        return (f"SELECT {cols}, l.holder AS lock_holder, l.host AS lock_host, "
                f"(SELECT k.reviewer {latest}) AS last_reviewer, (SELECT k.saved {latest}) AS last_saved FROM cases c "
                f"LEFT JOIN locks l ON l.case_id = c.id AND l.expires > {self.index.now}" + where)

    def cases(self, state: Optional[str] = None, assignee: Optional[str] = None) -> list[Case]:
        """Most recently updated first; ``state``, ``assignee``: only those in that review state,
        assigned to that reviewer."""
        where = [(" c.state = ?", state), (" c.assignee = ?", assignee)]
        where = [(w, v) for w, v in where if v is not None]
        q = self._case_query(" WHERE" + " AND".join(w for w, _v in where) if where else "") + " ORDER BY c.updated DESC"
        return [Case.from_row(r) for r in self.index.query(q, tuple(v for _w, v in where))]

    def case(self, case_id: str) -> Case:
        r = self.index.one(self._case_query(" WHERE c.id = ?"), (case_id,))
        if r is None:
            raise DelineateError(f"no case {case_id} in the store")
        return Case.from_row(r)

    def latest(self, case_id: str) -> dict:
        r = self.index.one(f"SELECT {', '.join(_CORRECTION_FIELDS)} FROM corrections WHERE case_id = ? "
                           "ORDER BY n DESC LIMIT 1", (case_id,))
        if r is None:
            raise DelineateError(f"no correction saved for case {case_id}")
        d = {name: r[name] for name in _CORRECTION_FIELDS}
        d["edits"], d["metrics"] = json.loads(d["edits"]), json.loads(d["metrics"])
        d["card"] = json.loads(d["card"]) if d["card"] else None
        return d

    def load(self, case_id: str, n: Optional[int] = None):
        """(image Volume, AI LabelMap, corrected LabelMap) of a case's correction n (default latest).
        The image comes back with its stored modality, window presets and identity-free source
        metadata (``metadata["source_meta"]``), not what the NIfTI file can say; its review state
        and reviewer as stored (``store_state``, ``store_reviewer``), for the report; the latest
        correction's measurements (``store_measurements``: rows as core.measurements.row keeps them),
        so a reopened case gets its rulers, angles, ROIs and RECIST axes back."""
        from formats.io import read_image, read_labelmap

        case = self.case(case_id)
        info = self.latest(case_id) if n is None else self._correction(case_id, n)
        folder = self.root / "cases" / case_id
        # the store's own files, written by save(): trusted, decoded in this process
        raw = read_image(folder / "image.nii.gz", isolate=False)
        meta = case.source_meta
        presets = [WindowPreset(str(p[0]), float(p[1]), float(p[2])) for p in meta.get("window_presets", [])]
        image = Volume(raw.array, raw.geometry, modality=case.modality or raw.modality,
                       description=meta.get("series_description") or f"store case {case_id}", source=raw.source,
                       window_presets=presets or raw.window_presets, warnings=list(raw.warnings),
                       metadata={"store_case": case_id, "source_meta": meta, "store_state": case.state,
                                 "store_reviewer": info.get("reviewer") or "",
                                 "store_measurements": list((info.get("edits") or {}).get("measurements") or []),
                                 "frames_are_time": bool(meta.get("plane", {}).get("frames_are_time"))},
                       **_plane_flags(meta.get("plane", {})))
        return (image, read_labelmap(folder / info["ai_file"], image, isolate=False),
                read_labelmap(folder / info["fixed_file"], image, isolate=False))

    def _correction(self, case_id: str, n: int) -> dict:
        r = self.index.one("SELECT ai_file, fixed_file FROM corrections WHERE case_id = ? AND n = ?",
                           (case_id, n))
        if r is None:
            raise DelineateError(f"case {case_id} has no correction {n}")
        return {"ai_file": r["ai_file"], "fixed_file": r["fixed_file"]}

    # -- health --------------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Problems found (empty: healthy): SQLite integrity, every indexed file present, and the
        litter of killed saves (unreferenced files and folders, temp folders) that repair() removes."""
        problems = self.index.integrity()
        for r in self.index.query("SELECT case_id, ai_file, fixed_file FROM corrections"):
            for f in (r["ai_file"], r["fixed_file"]):
                if not (self.root / "cases" / r["case_id"] / f).is_file():
                    problems.append(f"missing cases/{r['case_id']}/{f}")
        for case_id in (r["id"] for r in self.index.query("SELECT id FROM cases")):
            if not (self.root / "cases" / case_id / "image.nii.gz").is_file():
                problems.append(f"missing cases/{case_id}/image.nii.gz")
        for path, what in self._litter():
            problems.append(f"{what} {path.relative_to(self.root)}")
        return problems

    def repair(self) -> list[str]:
        """Remove the litter check() reports (files no committed correction points to, temp
        folders); returns what was removed. Missing files cannot be repaired and stay reported.
        Holds the write lock, so a save in progress (which holds it too) is never touched."""
        removed = []
        with self._writing():
            for path, _what in self._litter():
                if path.is_dir() and not path.is_symlink():  # a link is removed, never followed
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                if not os.path.lexists(path):
                    removed.append(str(path.relative_to(self.root)))
        return removed

    def _litter(self) -> list[tuple[Path, str]]:
        referenced = {r["id"]: {"image.nii.gz"} for r in self.index.query("SELECT id FROM cases")}
        for r in self.index.query("SELECT case_id, ai_file, fixed_file FROM corrections"):
            referenced.setdefault(r["case_id"], {"image.nii.gz"}).update((r["ai_file"], r["fixed_file"]))
        out = [(p, "temp folder") for p in sorted(self.root.glob(_TEMP_PREFIX + "*"))]
        for entry in sorted((self.root / "cases").iterdir()):
            if entry.name.startswith(_TEMP_PREFIX):
                out.append((entry, "temp folder"))
            elif entry.name not in referenced:
                out.append((entry, "unreferenced folder" if entry.is_dir() else "unreferenced file"))
            else:
                for f in sorted(entry.iterdir()):
                    if f.name.startswith(_TEMP_PREFIX):
                        out.append((f, "temp folder"))
                    elif f.name not in referenced[entry.name]:
                        out.append((f, "unreferenced file"))
        return out
