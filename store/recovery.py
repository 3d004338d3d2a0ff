"""Crash recovery: the case in progress (its label map and where its image came from) is written
every 30 s to a recovery file, atomically; after a crash the app offers to restore it."""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

from core.labels import LabelMap, LabelTable
from core.volume import Volume
from formats.atomic import atomic_output
from store.corrections import image_hash


def recovery_path() -> Path:
    env = os.environ.get("DELINEATE_RECOVERY")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("Delineate", "Delineate")) / "recovery" / "case.npz"


def save(volume: Volume, labelmap: LabelMap, source: str, path: Optional[Path] = None) -> Path:
    path = Path(path or recovery_path())
    meta = {"source": source, "image_hash": image_hash(volume), "table": labelmap.table.to_dict(),
            "saved": datetime.datetime.now().isoformat(timespec="seconds")}
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, labels=labelmap.array, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return path


def pending(path: Optional[Path] = None) -> Optional[dict]:
    """The recovery file's description (source, time), or None when there is nothing to restore."""
    path = Path(path or recovery_path())
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return json.loads(bytes(z["meta"]).decode())
    except (OSError, ValueError, KeyError):
        return None


def restore(volume: Volume, path: Optional[Path] = None) -> Optional[LabelMap]:
    """The saved label map if it belongs to ``volume`` (same content hash), else None."""
    path = Path(path or recovery_path())
    meta = pending(path)
    if meta is None or meta["image_hash"] != image_hash(volume):
        return None
    with np.load(path) as z:
        labels = z["labels"]
    return LabelMap(labels, volume.geometry, LabelTable.from_dict(meta["table"]))


def clear(path: Optional[Path] = None) -> None:
    path = Path(path or recovery_path())
    if path.exists():
        path.unlink()
