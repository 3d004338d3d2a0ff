"""Cine playback of a loop's frames or a series' time points, without Qt: the frame rate (the
file's, or chosen), looping and stepping. The window's cine bar runs it on a timer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from core.time_series import TimeSeries
from core.volume import Volume

DEFAULT_FPS = 25.0  # when the file states no frame time (a common ultrasound rate)
DEFAULT_SERIES_FPS = 4.0  # time points of a 3D series: each step reads a whole volume
MIN_FPS, MAX_FPS = 0.5, 120.0


@dataclass
class Cine:
    frames: int
    fps: float = DEFAULT_FPS
    loop: bool = True
    file_fps: Optional[float] = None  # what the file said, to show beside a chosen rate

    @classmethod
    def for_volume(cls, volume: Volume) -> "Cine":
        n = volume.geometry.size[2]
        file_fps = 1000.0 / volume.frame_time_ms if volume.frame_time_ms else None
        return cls(n, clamp_fps(file_fps or DEFAULT_FPS), True, file_fps)

    @classmethod
    def for_time_series(cls, series: TimeSeries) -> "Cine":
        """Real time when the file states the interval (a cardiac series), within MIN/MAX_FPS: a
        dynamic contrast series 10 s apart plays at MIN_FPS."""
        file_fps = 1000.0 / series.frame_time_ms if series.frame_time_ms else None
        return cls(series.count, clamp_fps(file_fps or DEFAULT_SERIES_FPS), True, file_fps)

    @property
    def interval_ms(self) -> int:
        return max(1, int(round(1000.0 / self.fps)))

    def set_fps(self, fps: float) -> None:
        self.fps = clamp_fps(fps)

    def step(self, frame: int, steps: int = 1) -> Optional[int]:
        """The frame ``steps`` on from ``frame``: wrapping round when looping, None past either end
        otherwise (playback stops there)."""
        target = frame + steps
        if 0 <= target < self.frames:
            return target
        if self.loop and self.frames > 0:
            return target % self.frames
        return None


def clamp_fps(fps: float) -> float:
    return float(min(max(fps, MIN_FPS), MAX_FPS))
