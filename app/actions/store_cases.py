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


def check_store(root: Optional[Path] = None, repair: bool = False) -> tuple[Path, list, list[str], int]:
    """(the store's folder, files removed by ``repair``, problems found, number of cases). Refuses
    a folder that is not a store rather than creating one there."""
    from core.errors import DelineateError
    from store.corrections import CorrectionsStore

    if root is not None and not (Path(root) / "index.sqlite").is_file():
        raise DelineateError(f"{root}: not a Delineate store (no index.sqlite)")
    with CorrectionsStore(root) as store:
        removed = store.repair() if repair else []
        return store.root, removed, store.check(), len(store.cases())


def export_dataset(out: Path, fmt: str = "nnunet", name: str = "Dataset500_Delineate",
                   root: Optional[Path] = None) -> dict:
    """The approved corrections as an nnU-Net v2 or MONAI dataset; counts of training and held-out cases."""
    from store.corrections import CorrectionsStore
    from store.dataset import export

    with CorrectionsStore(root) as store:
        return export(store, Path(out), fmt, name)
