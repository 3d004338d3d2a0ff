"""The one interface every interactive engine implements, and the registry the app picks from.

An engine answers prompts for one object on one image::

    engine = make_engine("network")            # or "classical", "nninteractive"
    state = engine.open(volume)                # per-image work (normalisation, caches), once
    mask = state.predict(prompts, previous)    # bool (z, y, x) on the volume's grid

``previous`` is the object's current mask (None for the first prompt): engines refine it, so a
click where it is wrong changes it there and leaves the rest alone. ``predict`` takes the
``cancel`` token of long work (core.progress) and raises core.errors.Cancelled when it is set.
Engines are Qt-free; torch is imported only inside the engines that need it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import numpy as np

from core.volume import Volume
from inference.interactive.prompts import Prompts


class ImageState(Protocol):
    def predict(self, prompts: Prompts, previous: Optional[np.ndarray] = None, cancel=None) -> np.ndarray: ...


class Engine(Protocol):
    name: str

    def open(self, volume: Volume) -> ImageState: ...


@dataclass(frozen=True)
class EngineInfo:
    name: str            # "network", "classical", "nninteractive"
    title: str           # shown in the GUI
    available: Callable[[], Optional[str]]  # None when usable here, else why not (one line)
    factory: Callable[..., Engine]          # factory(device=None) -> Engine
    auto: bool = True    # "auto" may pick it (False: only when named, e.g. while it is weaker than the fallback)


ENGINES: dict[str, EngineInfo] = {}


def register(info: EngineInfo) -> None:
    ENGINES[info.name] = info


# Each engine module registers itself on import; modules not yet present are skipped.
_MODULES = ("inference.interactive.classical", "inference.interactive.network", "inference.interactive.nninteractive_engine")


def engines() -> dict[str, EngineInfo]:
    """Every known engine (usable here or not: ``info.available()`` says why not)."""
    import importlib
    import importlib.util

    for m in _MODULES:
        if importlib.util.find_spec(m) is not None:
            importlib.import_module(m)
    return dict(ENGINES)


def make_engine(name: str = "auto", device=None) -> Engine:
    """The named engine; "auto" is the promptable network when usable here, else the classical one."""
    from core.errors import DelineateError

    known = engines()
    if name == "auto":
        for candidate in ("network", "classical"):
            if candidate in known and known[candidate].auto and known[candidate].available() is None:
                name = candidate
                break
        else:
            raise DelineateError("no interactive engine is usable on this machine")
    if name not in known:
        raise DelineateError(f"unknown interactive engine '{name}'; known: {', '.join(sorted(known)) or 'none'}")
    why = known[name].available()
    if why is not None:
        raise DelineateError(f"interactive engine '{name}' is not usable here: {why}")
    return known[name].factory(device=device)
