"""The corrections store's cases: listing them (the worklist) and opening one (its de-identified
image, the AI draft and the latest correction). Each call opens its own store connection, so it
may run in any thread (SQLite connections stay in the thread that made them)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from core.progress import no_progress


def list_cases(root: Optional[Path] = None, state: Optional[str] = None, progress=None, cancel=None) -> list:
    """The store's cases (store.corrections.Case), most recently updated first; ``state``: only
    those in that review state."""
    from core.errors import DelineateError
    from store.corrections import STATES, CorrectionsStore, default_root

    if state is not None and state not in STATES:
        raise DelineateError(f"unknown review state {state!r}; one of {', '.join(STATES)}")
    (progress or no_progress)(0.0, "reading the worklist")
    if not (Path(root) if root is not None else default_root()).joinpath("index.sqlite").exists():
        return []  # nothing saved yet: listing does not create the store
    with CorrectionsStore(root) as store:
        return store.cases(state)


def open_case(case_id: str, root: Optional[Path] = None, progress=None, cancel=None):
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
