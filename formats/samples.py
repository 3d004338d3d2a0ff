"""Sample images the app opens with no download, found by name (resources/samples/index.json)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from core.errors import DelineateError

INDEX = Path(__file__).resolve().parent.parent / "resources" / "samples" / "index.json"
DEFAULT = "mni152-t1"


def _entries() -> dict:
    return {k: v for k, v in json.loads(INDEX.read_text()).items() if not k.startswith("_")}


def names() -> list[str]:
    return list(_entries())


def describe(name: str) -> dict:
    try:
        return dict(_entries()[name])
    except KeyError:
        raise DelineateError(f"no sample named {name!r}; samples: {', '.join(names())}") from None


def path(name: str = DEFAULT) -> Path:
    entry = describe(name)
    spec = importlib.util.find_spec(entry["package"])
    if spec is None or not spec.submodule_search_locations:
        raise DelineateError(f"sample {name!r} needs the package {entry['package']!r}; pip install -r requirements.txt")
    p = Path(list(spec.submodule_search_locations)[0]) / entry["path"]
    if not p.exists():
        raise DelineateError(f"sample {name!r} is missing at {p}")
    return p
