"""What the viewer shows, without Qt: the image on its display grid, the crosshair, the window,
the segments' visibility and opacity, heat maps. Panels and views subscribe to named changes;
a change notifies only when the value really changed (ITK-SNAP's UI-model idea)."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Optional

import numpy as np

from core.display import VIEWS, DisplayGrid
from core.errors import GeometryError
from core.labels import LabelMap
from core.overlay import HeatMap, label_lut
from core.volume import Volume, WindowPreset
from core.windows import initial_window, presets_for


class Observable:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callable]] = defaultdict(list)

    def subscribe(self, event: str, fn: Callable) -> Callable[[], None]:
        """Call ``fn`` on each ``event``; returns the function that unsubscribes it."""
        self._subscribers[event].append(fn)
        return lambda: self._subscribers[event].remove(fn) if fn in self._subscribers[event] else None

    def notify(self, event: str, *args) -> None:
        for fn in list(self._subscribers[event]):
            fn(*args)


class ViewerModel(Observable):
    """Events: "image", "cursor", "window", "labels" (voxels changed), "segments" (table or
    display settings), "heatmaps"."""

    def __init__(self) -> None:
        super().__init__()
        self.volume: Optional[Volume] = None
        self.display: Optional[DisplayGrid] = None
        self.image: Optional[np.ndarray] = None  # display-grid image
        self.cursor = np.zeros(3, dtype=int)  # display voxel (x, y, z)
        self.window = WindowPreset("Auto", 0.0, 1.0)
        self.labelmap: Optional[LabelMap] = None
        self.labels: Optional[np.ndarray] = None  # display-grid labels
        self.hidden: set[int] = set()
        self.opacity = 0.5
        self.outline = False
        self.heatmaps: list[HeatMap] = []
        self._heat_display: dict[int, np.ndarray] = {}
        self.active_heat: Optional[str] = None  # the layer the heat-map controls act on
        self.one_heatmap = True  # stacked maps hide the anatomy: by default only the active one shows
        self._heat_opacity: dict[str, float] = {}  # each map's opacity while all maps are hidden
        self.changed_box = None

    # -- image -------------------------------------------------------------------------------
    def set_volume(self, volume: Volume, keep_cursor: bool = False) -> None:
        world = self.cursor_world() if keep_cursor and self.display is not None else None
        self.volume = volume
        self.display = DisplayGrid.for_geometry(volume.geometry)
        self.image = self.display.to_display(volume.array, order=1,
                                             fill=float(volume.array.min()) if volume.array.size else 0)
        self.labelmap, self.labels, self.heatmaps, self._heat_display = None, None, [], {}
        self.active_heat = None
        self.hidden = set()
        w = initial_window(volume)
        self.window = WindowPreset("Abdomen" if w.name == "Abdomen" else "Auto", w.center, w.width)
        self.cursor = np.asarray(self.display.grid.size) // 2
        self.notify("image")
        if world is not None:
            self.set_cursor_world(world)

    def clear(self) -> None:
        """Nothing open (a load failed before anything else was shown)."""
        self.volume = self.display = self.image = self.labelmap = self.labels = None
        self.heatmaps, self._heat_display, self.hidden = [], {}, set()
        self.active_heat = None
        self.notify("image")

    def presets(self) -> list[WindowPreset]:
        return presets_for(self.volume) if self.volume is not None else []

    def set_window(self, window: WindowPreset) -> None:
        if (window.center, window.width) != (self.window.center, self.window.width):
            self.window = window
            self.notify("window")

    def value_span(self) -> float:
        lo, hi = self.volume.value_range() if self.volume is not None else (0.0, 1.0)
        return float(hi - lo)

    # -- crosshair -----------------------------------------------------------------------------
    def set_cursor_index(self, ijk) -> None:
        new = self.display.clamp_index(ijk)
        if not np.array_equal(new, self.cursor):
            self.cursor = new
            self.notify("cursor")

    def set_cursor_world(self, xyz) -> None:
        self.set_cursor_index(self.display.grid.world_to_index(xyz))

    def cursor_world(self) -> np.ndarray:
        return self.display.grid.index_to_world(self.cursor)

    def slice_index(self, view: str) -> int:
        return int(self.cursor[self.display.sliced_axis(view)])

    def scroll(self, view: str, steps: int) -> None:
        ijk = self.cursor.copy()
        ijk[self.display.sliced_axis(view)] += steps
        self.set_cursor_index(ijk)

    def set_slice(self, view: str, index: int) -> None:
        ijk = self.cursor.copy()
        ijk[self.display.sliced_axis(view)] = index
        self.set_cursor_index(ijk)

    # -- labels --------------------------------------------------------------------------------
    def check_grid(self, labelmap: Optional[LabelMap]) -> None:
        if labelmap is not None and not labelmap.geometry.same_grid(self.volume.geometry, tol=1e-4):
            raise GeometryError("the segmentation is not on the image's grid "
                                f"({labelmap.geometry.size} vs {self.volume.geometry.size})")

    def set_labelmap(self, labelmap: Optional[LabelMap]) -> None:
        self.check_grid(labelmap)
        self.labelmap = labelmap
        self.labels = None if labelmap is None else self.display.to_display(labelmap.array, order=0)
        self.hidden = set()
        self.notify("segments")
        self.notify("labels")

    def labels_changed(self, box=None) -> None:
        """The label map's voxels were edited in place; ``box`` (z, y, x slices of the label map)
        bounds the change, so views whose slice misses it need not redraw."""
        if self.labelmap is not None and not self.display.is_view:
            self.labels = self.display.to_display(self.labelmap.array, order=0)
        self.changed_box = None if box is None else self._display_box(box)
        self.notify("labels")
        self.changed_box = None

    def _display_box(self, box) -> np.ndarray:
        """(2, 3) min/max display index (x, y, z) covering a box of the label map's grid."""
        from core.resample import box_edges

        lo, hi = box_edges(box, self.labelmap.geometry, self.display.grid)
        return np.stack([np.floor(lo), np.ceil(hi)])

    def slice_touched(self, view: str) -> bool:
        """Whether the last label change reaches the slice ``view`` shows."""
        box = getattr(self, "changed_box", None)
        if box is None:
            return True
        a = self.display.sliced_axis(view)
        return bool(box[0, a] <= self.slice_index(view) <= box[1, a])

    def set_visible(self, value: int, visible: bool) -> None:
        if visible == (value not in self.hidden):
            return
        (self.hidden.discard if visible else self.hidden.add)(value)
        self.notify("segments")

    def set_opacity(self, opacity: float) -> None:
        if opacity != self.opacity:
            self.opacity = float(opacity)
            self.notify("segments")

    def set_outline(self, on: bool) -> None:
        if on != self.outline:
            self.outline = bool(on)
            self.notify("segments")

    def set_segment_color(self, value: int, rgb) -> None:
        from dataclasses import replace

        lab = self.labelmap.table.get(value)
        if lab is not None and tuple(lab.color) != tuple(rgb):
            self.labelmap.table = self.labelmap.table.with_label(replace(lab, color=tuple(int(c) for c in rgb)))
            self.notify("segments")

    def label_lut(self) -> np.ndarray:
        size = int(self.labels.max(initial=0)) + 1 if self.labels is not None and self.labels.dtype != np.uint8 else 256
        return label_lut(self.labelmap.table, self.hidden, self.opacity, size)

    # -- heat maps -----------------------------------------------------------------------------
    def add_heatmap(self, heat: HeatMap) -> None:
        """The new map becomes the active layer (and, one map at a time, the only one shown)."""
        if not heat.geometry.same_grid(self.volume.geometry, tol=1e-4):
            raise GeometryError(f"heat map '{heat.name}' is not on the image's grid")
        self.heatmaps = [h for h in self.heatmaps if h.name != heat.name] + [heat]
        self._heat_display = {id(h): self._heat_display.get(id(h)) for h in self.heatmaps}
        self._heat_display[id(heat)] = self.display.to_display(heat.codes, order=0)
        self._activate(heat.name)
        self.notify("heatmaps")

    def remove_heatmap(self, name: str) -> None:
        self.heatmaps = [h for h in self.heatmaps if h.name != name]
        self._heat_display = {id(h): self._heat_display[id(h)] for h in self.heatmaps}
        if self.active_heat == name:
            self._activate(self.heatmaps[-1].name if self.heatmaps else None)
        self.notify("heatmaps")

    def active_heatmap(self) -> Optional[HeatMap]:
        return next((h for h in self.heatmaps if h.name == self.active_heat), None)

    def set_active_heatmap(self, name: str) -> None:
        if name != self.active_heat and any(h.name == name for h in self.heatmaps):
            self._activate(name)
            self.notify("heatmaps")

    def set_heatmap_visible(self, name: str, visible: bool) -> None:
        for h in self.heatmaps:
            if h.name == name and h.visible != visible:
                h.visible = visible
                self.notify("heatmaps")

    def set_one_heatmap(self, on: bool) -> None:
        """One map at a time (the active one) or all maps stacked."""
        if on != self.one_heatmap:
            self.one_heatmap = on
            for h in self.heatmaps:
                h.visible = h.name == self.active_heat or not on
            self.notify("heatmaps")

    def _activate(self, name: Optional[str]) -> None:
        self.active_heat = name
        for h in self.heatmaps:
            if h.name == name:
                h.visible = True
            elif self.one_heatmap:
                h.visible = False

    def heat_display(self, heat: HeatMap) -> np.ndarray:
        return self._heat_display[id(heat)]

    def toggle_heatmaps(self) -> None:
        """Hide every heat map (opacity 0), or bring them back at the opacity each had."""
        hide = not all(h.opacity == 0 for h in self.heatmaps)
        if hide:
            self._heat_opacity = {h.name: h.opacity for h in self.heatmaps}
        for h in self.heatmaps:
            h.opacity = 0.0 if hide else self._heat_opacity.get(h.name, 0.6)
        self.notify("heatmaps")

    def heatmap_changed(self) -> None:
        """Colour map, opacity or threshold of a heat map changed."""
        self.notify("heatmaps")

    # -- what is under the cursor --------------------------------------------------------------
    def probe(self, display_ijk=None) -> dict:
        """Source voxel index, LPS world position, image value and label at a display voxel."""
        ijk = self.cursor if display_ijk is None else self.display.clamp_index(display_ijk)
        world = self.display.grid.index_to_world(ijk)
        src = np.rint(self.volume.geometry.world_to_index(world)).astype(int)
        inside = self.volume.geometry.contains_index(src)
        out = {"display_index": ijk.tolist(), "world": world.tolist(),
               "index": src.tolist() if inside else None, "value": None, "label": None}
        if inside:
            i, j, k = src
            v = self.volume.array[k, j, i]
            out["value"] = v.tolist() if np.ndim(v) else float(v)
            if self.labelmap is not None:
                lv = int(self.labelmap.array[k, j, i])
                lab = self.labelmap.table.get(lv)
                out["label"] = (lv, lab.name if lab else str(lv)) if lv else None
        return out


__all__ = ["ViewerModel", "VIEWS"]
