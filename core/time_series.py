"""A 3D image over time (a 4D NIfTI: dynamic contrast, cardiac phases, fMRI), without Qt.

The open Volume holds one time point's voxels; its ``metadata[KEY]`` is the series, which reads the
others one at a time when asked (a 256x256x64x20 series is 160 MiB of int16: only the time point on
screen is in memory). Showing another time point swaps the Volume's array in place: the same
Volume, geometry, label map, measurements and crosshair stay, because they belong to the case, not
to a time point. A model run reads ``volume.array``: the time point on screen.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from core.errors import DelineateError, GeometryError

KEY = "time_series"


class TimeSeries:
    """``count`` time points of one 3D grid; subclasses (formats) implement ``_read``."""

    def __init__(self, count: int, frame_time_ms: Optional[float] = None) -> None:
        self.count = int(count)
        self.frame_time_ms = frame_time_ms  # between time points, when the file says
        self.shown = 0  # the time point in the volume's array
        #: heat maps made on a time point not on screen, with the one that was active (show_time_point)
        self.parked_heat: dict[int, tuple[list, Optional[str]]] = {}

    def read(self, k: int) -> np.ndarray:
        """Time point ``k``'s voxels ``[z, y, x]``; raises DelineateError if the file cannot give them."""
        if not 0 <= k < self.count:
            raise IndexError(f"time point {k} of {self.count}")
        return self._read(int(k))

    def _read(self, k: int) -> np.ndarray:
        raise NotImplementedError

    def metadata(self, k: int) -> dict:
        """What else in the Volume's metadata belongs to time point ``k`` (a DICOM series' instance
        UIDs, which a SEG made on it references)."""
        return {}

    def time_s(self, k: int) -> Optional[float]:
        return k * self.frame_time_ms / 1000.0 if self.frame_time_ms else None

    def label(self, k: Optional[int] = None) -> str:
        """'t 3/20  4 s' (the time when the file states the interval)."""
        k = self.shown if k is None else k
        t = self.time_s(k)
        return f"t {k + 1}/{self.count}" + (f"  {t:.3g} s" if t is not None else "")


def time_series_of(volume) -> Optional[TimeSeries]:
    ts = (getattr(volume, "metadata", None) or {}).get(KEY)
    return ts if isinstance(ts, TimeSeries) and ts.count > 1 else None


def select(volume, k: int):
    """``volume`` (a Volume of a series) holding time point ``k`` (0-based) in place of the one it
    held; returned for chaining. Raises DelineateError if the file cannot give it."""
    ts = time_series_of(volume)
    if ts is None:
        raise DelineateError(f"{volume.source or volume.description}: one time point only")
    if not 0 <= k < ts.count:
        raise DelineateError(f"{volume.source or volume.description}: time point {k + 1} asked for; "
                             f"the series has {ts.count}")
    if k != ts.shown:
        array = ts.read(k)
        if array.shape != volume.array.shape:  # a reader's bug, not the file's: never a misplaced grid
            raise GeometryError(f"time point {k} has shape {array.shape}, the series {volume.array.shape}")
        volume.array = array
        ts.shown = int(k)
        volume.metadata.update(ts.metadata(k))
    volume.metadata["time_point"] = int(k)
    return volume


def show_time_point(model, k: int) -> bool:
    """Put time point ``k`` into the viewer model's open volume and redraw the image (a
    ``core.viewer_model.ViewerModel``); False when the volume is no time series or ``k`` is shown.
    The window stays (time points compare under one window); views redraw the image as on a window
    change, keeping their zoom, slices and crosshair; a "time" event tells the rest.

    Heat maps stay with the time point they were made on: a saliency, probability or uncertainty
    map describes those voxels, and over another time point's it would point at enhancement or
    motion that is not there. Leaving a time point takes its maps off the viewer; coming back puts
    them back (an explanation costs minutes to make again, so they are not thrown away)."""
    vol = model.volume
    ts = time_series_of(vol)
    if ts is None or k == ts.shown:
        return False
    left = ts.shown
    array = select(vol, k).array
    if model.heatmaps:
        ts.parked_heat[left] = (list(model.heatmaps), model.active_heat)
        for heat in list(model.heatmaps):
            model.remove_heatmap(heat.name)
    model.image = model.display.to_display(array, order=1, fill=float(array.min()) if array.size else 0)
    maps, active = ts.parked_heat.pop(k, ([], None))
    for heat in maps:
        model.add_heatmap(heat)
    if active is not None:
        model.set_active_heatmap(active)
    model.notify("window")
    model.notify("time")
    return True


def shown_time_point(volume) -> Optional[int]:
    """The time point in ``volume``'s array (None: no series)."""
    ts = time_series_of(volume)
    return None if ts is None else ts.shown


def add_heatmap_made_at(model, heat, k: Optional[int]) -> bool:
    """Show a heat map made on time point ``k``, or, when the viewer has stepped to another one while
    it was made, keep it with ``k`` (``show_time_point`` puts it up on coming back). True: shown."""
    ts = time_series_of(model.volume)
    if ts is None or k is None or k == ts.shown:
        model.add_heatmap(heat)
        return True
    maps, active = ts.parked_heat.get(k, ([], None))
    ts.parked_heat[k] = (maps + [heat], active)
    return False

