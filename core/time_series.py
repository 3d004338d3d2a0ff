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
    change, keeping their zoom, slices and crosshair; a "time" event tells the rest."""
    vol = model.volume
    ts = time_series_of(vol)
    if ts is None or k == ts.shown:
        return False
    array = select(vol, k).array
    model.image = model.display.to_display(array, order=1, fill=float(array.min()) if array.size else 0)
    model.notify("window")
    model.notify("time")
    return True
