"""A DICOM series over time (formats.dicom.temporal grouped it) as a core.time_series.TimeSeries:
the first time point opens as the Volume, the others are decoded one at a time when shown, each
through the same loader as a 3D series (sorted, rescaled, checked) and, like the first, in a
decoding child (formats.sandbox) unless the caller decodes in process.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from core import time_series
from core.errors import FormatError
from core.geometry import Geometry
from core.progress import no_progress
from core.volume import Volume
from formats.dicom.temporal import uniform_ms


class DicomTimeSeries(time_series.TimeSeries):
    def __init__(self, info, geometry: Geometry, first: Volume) -> None:
        super().__init__(len(info.time_points), uniform_ms(info.times_s))
        self.info = replace(info, skipped=[], warnings=[])  # said once, when the series opened
        self.geometry = geometry
        self.times_s = info.times_s
        self.source = first.source
        self.sops = {0: first.metadata.get("sop_instance_uids", [])}
        self.reads: list[int] = []  # time points decoded after the first, in order (tests)

    def time_s(self, k: int) -> Optional[float]:
        return self.times_s[k] if self.times_s else super().time_s(k)

    def metadata(self, k: int) -> dict:
        return {"sop_instance_uids": self.sops[k]} if k in self.sops else {}

    def _read(self, k: int) -> np.ndarray:
        from formats.sandbox import call, in_process

        if in_process():
            vol = _read_here(self.info, k)
        else:
            vol = call(self.source, _read_here, self.info, k, preload=("formats.dicom.dynamic",))
        if not vol.geometry.same_grid(self.geometry, tol=1e-4):
            # the scan grouped the same slice positions: a grid that differs is a reader's bug, not a
            # reason to show a time point misplaced
            raise FormatError(self.source, f"time point {k + 1} is on another grid than the first "
                                           f"({vol.geometry.size} vs {self.geometry.size}); not shown")
        self.reads.append(k)
        self.sops[k] = vol.metadata.get("sop_instance_uids", [])
        return vol.array


def _read_here(info, k: int, progress=no_progress) -> Volume:
    from formats.dicom.load import load_series
    from formats.io import _guard

    return _guard(_source(info), load_series, info, progress, None, None, 4, k)


def _source(info) -> str:
    return str(info.files[0].parent if len(info.files) > 1 else info.files[0])


def attach(volume: Volume, info) -> None:
    """Make ``volume`` (the first time point of ``info``) a series over time."""
    if len(info.time_points) < 2:
        return
    volume.metadata[time_series.KEY] = DicomTimeSeries(info, volume.geometry, volume)
    volume.metadata["time_point"] = 0
