"""Window/level: the presets radiologists use, and the right-drag gesture's arithmetic."""
from __future__ import annotations

from core.volume import Volume, WindowPreset

#: CT presets in HU (centre, width), as in common PACS defaults
CT_PRESETS = (
    WindowPreset("Brain", 40, 80),
    WindowPreset("Subdural", 75, 215),
    WindowPreset("Stroke", 32, 8),
    WindowPreset("Lung", -600, 1500),
    WindowPreset("Mediastinum", 50, 350),
    WindowPreset("Abdomen", 40, 400),
    WindowPreset("Liver", 60, 160),
    WindowPreset("Bone", 400, 1800),
)


def presets_for(volume: Volume) -> list[WindowPreset]:
    """File presets first (the scanner's choice), then auto, then the modality's standard ones."""
    out = [WindowPreset(f"From file{f' ({p.name})' if p.name else ''}", p.center, p.width)  # lists add the values
           for p in volume.window_presets]
    auto = volume.default_window() if not volume.window_presets else _percentile_window(volume)
    out.append(WindowPreset("Auto", auto.center, auto.width))
    if volume.modality == "CT":
        out.extend(CT_PRESETS)
    return out


def initial_window(volume: Volume) -> WindowPreset:
    """What an image opens with: the file's window (the scanner's choice), else soft tissue
    (abdomen) on CT, as a PACS opens a CT with no window in it (the percentile range of a CT with
    air around the body is ~1700 HU wide and leaves organs one grey), else the robust percentile range."""
    if volume.window_presets or volume.modality != "CT":
        return volume.default_window()
    return next(p for p in CT_PRESETS if p.name == "Abdomen")


def _percentile_window(volume: Volume) -> WindowPreset:
    shown = Volume(volume.array, volume.geometry, volume.modality)  # without file presets
    return shown.default_window()


def dragged(window: WindowPreset, dx: float, dy: float, value_span: float) -> WindowPreset:
    """Right-drag: horizontal changes width, vertical changes level (up = brighter), as in
    ITK-SNAP and Slicer. ``dx``/``dy`` are pixels; one screen of drag spans the value range."""
    gain = max(value_span, 1e-6) / 500.0
    width = max(window.width + dx * gain, 1e-3 * max(value_span, 1e-6))
    center = window.center + dy * gain
    return WindowPreset("Custom", center, width)


def levels(window: WindowPreset) -> tuple[float, float]:
    return window.center - window.width / 2.0, window.center + window.width / 2.0
