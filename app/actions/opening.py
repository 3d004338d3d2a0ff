"""Opening images: sample names or paths, DICOM folders with several series (scanned, then one
chosen), a first slice shown while a series loads, and heat maps read from files. Decoding runs in a
child process (formats.sandbox), so a hostile file cannot take the application down."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.errors import DelineateError
from core.geometry import Geometry
from core.progress import no_progress
from core.volume import Volume


def resolve(path: str) -> str:
    """A bundled sample's name (``info --samples``) or a path, as a path."""
    from formats import samples

    if not Path(path).exists() and path in samples.names():
        return str(samples.path(path))
    return str(path)


def needs_series_choice(path: str) -> bool:
    """Whether ``path`` is a DICOM folder, whose series are listed before one is read. Raises
    DelineateError for a path that is not an image."""
    from formats.io import kind_of

    return kind_of(path) == "dicom" and Path(path).is_dir()


def scan(path: str, progress=no_progress, cancel=None) -> list:
    """The series in a DICOM folder, largest first."""
    from formats.io import list_series

    return list_series(path, progress, cancel)


def read(path: str, series: Optional[str] = None, progress=no_progress, cancel=None,
         on_preview: Optional[Callable[[Volume], None]] = None) -> Volume:
    """Read an image; ``on_preview`` receives the stack's middle slice as a one-slice volume as soon
    as it is decoded (from the worker thread)."""
    from formats.io import read_image

    return read_image(resolve(path), progress, cancel, series, on_first_slice=_preview_to(on_preview))


def read_series(info, progress=no_progress, cancel=None, on_preview=None) -> Volume:
    """Read one series found by ``scan``."""
    from formats.io import load_series

    return load_series(info, progress, cancel, _preview_to(on_preview))


def _preview_to(on_preview):
    if on_preview is None:
        return None
    return lambda k, plane, geo: on_preview(preview_volume(k, plane, geo))


def preview_volume(k: int, plane, geo: Geometry) -> Volume:
    """Slice ``k`` of a stack with geometry ``geo`` as a one-slice volume in the right place."""
    origin = geo.index_to_world([0, 0, k])
    g = Geometry((geo.size[0], geo.size[1], 1), geo.spacing, origin, geo.direction)
    return Volume(np.asarray(plane)[np.newaxis], g, description="loading…")


def read_heatmap(path: str, geometry: Geometry, progress=no_progress, cancel=None):
    """A grey image on the open image's grid, as a heat-map layer."""
    from core.overlay import HeatMap
    from formats.io import read_image

    values = read_image(path, progress, cancel)
    if values.is_color or not values.geometry.same_grid(geometry, tol=1e-4):
        raise DelineateError(f"{path}: a heat map must be a grey image on the open image's grid "
                             f"(size {geometry.size}); this one is {values.geometry.size}")
    return HeatMap.from_values(Path(path).name.split(".")[0], values.array, geometry)
