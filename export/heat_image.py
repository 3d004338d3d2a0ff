"""An explanation view for the report: one heat map (saliency or uncertainty) over the image on one
plane, in patient orientation as the viewer shows it, with what the report needs to draw its
colour bar (colour map, range, threshold, meaning)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.display import LETTERS, ROWS_DOWN, DisplayGrid
from core.planar import plane_view
from core.render2d import grey_ramp
from core.volume import Volume
from export.keyimages import KeyImage, report_window


@dataclass
class ExplanationView:
    """Which map and plane the report shows: ``heat`` a core.overlay.HeatMap on the image's grid,
    ``view`` axial/coronal/sagittal, ``world`` a point (LPS mm) the plane passes through (default:
    the map's peak)."""
    heat: object
    view: str = "axial"
    world: Optional[np.ndarray] = None


def colormap_table(name: str) -> np.ndarray:
    """(256, 3) float colours of a matplotlib colour map (the viewer's names are matplotlib's)."""
    from matplotlib import colormaps

    cmap = colormaps[name] if name in colormaps else colormaps["inferno"]
    return cmap(np.linspace(0, 1, 256))[:, :3]


def heat_key_image(volume: Volume, chosen: ExplanationView) -> KeyImage:
    heat = chosen.heat
    grid = DisplayGrid.for_geometry(volume.geometry)
    view = plane_view(volume.geometry) if volume.is_planar else chosen.view  # a loop: its frame, whole
    if chosen.world is None:
        z, y, x = np.unravel_index(int(np.argmax(heat.codes)), heat.codes.shape)
        world = volume.geometry.index_to_world([x, y, z])
    else:
        world = chosen.world
    k = int(grid.clamp_index(grid.grid.world_to_index(world))[grid.sliced_axis(view)])
    fill = volume.array.min() if not volume.is_color else 0
    plane = grid.take_slice(grid.to_display(volume.array, fill=fill), view, k)
    codes = grid.take_slice(grid.to_display(heat.codes, order=0), view, k)
    w = report_window(volume)
    grey = plane[..., :3].astype(np.float32) / 255 if volume.is_color else \
        np.repeat(grey_ramp(w.center - w.width / 2, w.center + w.width / 2, plane)[..., None], 3, axis=2) / 255.0
    first = int(np.ceil((heat.threshold - heat.vmin) * 255.0 / (heat.vmax - heat.vmin) - 1e-9))
    shown = (codes >= max(first, 1))[..., None]
    alpha = float(np.clip(heat.opacity, 0, 1)) if heat.opacity > 0 else 0.6
    rgb = np.where(shown, grey * (1 - alpha) + colormap_table(heat.colormap)[codes] * alpha, grey)
    if not ROWS_DOWN[view]:
        rgb = rgb[::-1]
    rs, cs = grid.plane_spacing(view)
    return KeyImage(view, (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8),
                    (rgb.shape[1] * cs, rgb.shape[0] * rs),
                    LETTERS[view] if volume.orientation_known else ("", "", "", ""), k)
