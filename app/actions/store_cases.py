"""The corrections store's cases: listing them (the worklist, or only those assigned to me) and
opening one (its de-identified image, the AI draft and the latest correction), for reading or for
editing under the case's lock (store.team). Each call opens its own store connection, so it may run
in any thread (SQLite connections stay in the thread that made them). ``root`` is a store folder
or a ``postgresql://...?files=/shared/folder`` URL (store.location); None: $DELINEATE_STORE."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core.progress import no_progress


def _exists(root) -> bool:
    """Whether there is a store to read: a team store's database always is; a folder only once
    something was saved (listing does not create it)."""
    from store.location import resolve

    loc = resolve(root)
    return loc.url is not None or (loc.files / "index.sqlite").exists()


def list_cases(root=None, state: Optional[str] = None, progress=None, cancel=None,
               assignee: Optional[str] = None) -> list:
    """The store's cases (store.corrections.Case), most recently updated first; ``state``: only
    those in that review state; ``assignee``: only those assigned to that reviewer."""
    from core.errors import DelineateError
    from store.corrections import STATES, CorrectionsStore

    if state is not None and state not in STATES:
        raise DelineateError(f"unknown review state {state!r}; one of {', '.join(STATES)}")
    (progress or no_progress)(0.0, "reading the worklist")
    if not _exists(root):
        return []  # nothing saved yet: listing does not create the store
    with CorrectionsStore(root) as store:
        return store.cases(state, assignee=assignee)


def open_case(case_id: str, root=None, progress=None, cancel=None):
    """(image Volume, AI LabelMap, corrected LabelMap) of the case's latest correction."""
    from core.progress import check
    from store.corrections import CorrectionsStore

    progress = progress or no_progress
    progress(0.0, f"opening case {case_id}")
    with CorrectionsStore(root) as store:
        check(cancel)
        loaded = store.load(case_id)
    progress(1.0, f"opened case {case_id}")
    return loaded


@dataclass
class EditedCase:
    """A case opened for editing: what open_case returns, and the lock held while it is open
    (store.team.HeldLock; ``release_case`` lets it go)."""
    image: object
    ai: object
    corrected: object
    lock: object

    @property
    def case_id(self) -> str:
        return self.lock.case_id


def take_case(case_id: str, reviewer: str, root=None, progress=None, cancel=None,
              timeout: Optional[float] = None) -> EditedCase:
    """Open the case for editing: take its lock (store.team.CaseLocked, saying who holds it, when
    someone else does), load it, and keep the lock alive by a heartbeat until ``release_case``."""
    from core.progress import check
    from store.corrections import CorrectionsStore
    from store.team import HeldLock

    progress = progress or no_progress
    progress(0.0, f"opening case {case_id}")
    with CorrectionsStore(root) as store:
        token = store.lock(case_id, reviewer, timeout)
        try:
            check(cancel)
            image, ai, corrected = store.load(case_id)
        except BaseException:
            store.unlock(case_id, token, reviewer)
            raise
        held = HeldLock(store.location, case_id, token, reviewer, timeout or store.lock_timeout)
    progress(1.0, f"opened case {case_id}")
    return EditedCase(image, ai, corrected, held)


def release_case(edited_or_lock) -> bool:
    """Let the case's lock go (False: it had been broken or had expired and been taken over)."""
    lock = getattr(edited_or_lock, "lock", edited_or_lock)
    return lock.release()


def check_store(root=None, repair: bool = False) -> tuple[str, list, list[str], int]:
    """(the store's location, files removed by ``repair``, problems found, number of cases).
    Refuses a folder that is not a store rather than creating one there."""
    from core.errors import DelineateError
    from store.corrections import CorrectionsStore

    if root is not None and not _exists(root):
        raise DelineateError(f"{root}: not a Delineate store (no index.sqlite)")
    with CorrectionsStore(root) as store:
        removed = store.repair() if repair else []
        return store.location.shown, removed, store.check(), len(store.cases())


def store_info(root=None, migrate: bool = False) -> dict:
    """What the store is: backend, where, schema version, cases by state, live locks. Opening it
    migrates it (``migrate``: a folder that is no store yet becomes one)."""
    from core.errors import DelineateError
    from store.corrections import SCHEMA_VERSION, STATES, CorrectionsStore

    if not migrate and not _exists(root):
        raise DelineateError(f"{root}: not a Delineate store (no index.sqlite)")
    with CorrectionsStore(root) as store:
        cases = store.cases()
        return {"backend": store.index.kind, "location": store.location.shown, "files": str(store.root),
                "schema": store.schema_version(), "schema_expected": SCHEMA_VERSION,
                "cases": {s: sum(c.state == s for c in cases) for s in STATES},
                "locks": [lock.describe() + f" (case {lock.case_id})" for lock in store.locks()]}


def assign_case(case_id: str, assignee: str, actor: str = "", root=None) -> None:
    from store.corrections import CorrectionsStore

    with CorrectionsStore(root) as store:
        store.assign(case_id, assignee, actor)


def break_lock(case_id: str, actor: str, reason: str, root=None):
    """The lock that was broken (store.team.LockInfo), or None when the case had none."""
    from store.corrections import CorrectionsStore

    with CorrectionsStore(root) as store:
        return store.break_lock(case_id, actor, reason)


def audit_trail(case_id: Optional[str] = None, root=None) -> list[dict]:
    from store.corrections import CorrectionsStore

    with CorrectionsStore(root) as store:
        return store.audit(case_id)


def export_dataset(out: Path, fmt: str = "nnunet", name: str = "Dataset500_Delineate",
                   root=None) -> dict:
    """The approved corrections as an nnU-Net v2 or MONAI dataset; counts of training and held-out cases."""
    from store.corrections import CorrectionsStore
    from store.dataset import export

    with CorrectionsStore(root) as store:
        return export(store, Path(out), fmt, name)
