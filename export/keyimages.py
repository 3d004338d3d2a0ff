"""Key images for the report: the three planes through a segment's centre, in patient orientation
(as the viewer shows them), with filled and outlined overlays."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from core.display import LETTERS, ROWS_DOWN, VIEWS, DisplayGrid
from core.labels import LabelMap
from core.overlay import label_lut, outline
from core.render2d import grey_ramp
from core.planar import plane_view
from core.volume import Volume, WindowPreset
from core.windows import initial_window


@dataclass
class KeyImage:
    view: str
    rgb: np.ndarray  # (rows, cols, 3) uint8, rows top to bottom as on screen
    extent_mm: tuple[float, float]  # (width, height)
    letters: tuple[str, str, str, str]  # left, right, top, bottom
    slice_index: int
    reason: str = ""  # why this plane: "edited region", "most uncertain region", "largest segment"


def focus_index(labelmap: LabelMap, value: Optional[int] = None) -> np.ndarray:
    """Source (x, y, z) index at the centre of mass of ``value`` (default: the largest segment)."""
    arr = labelmap.array
    if value is None:
        counts = np.bincount(arr.reshape(-1)[:: max(1, arr.size // 4_000_000)])
        counts[0] = 0
        value = int(counts.argmax()) if counts.size > 1 and counts.max() else None
    if value is None:
        return (np.asarray(labelmap.geometry.size) - 1) // 2
    com = ndimage.center_of_mass(arr == value)
    return np.rint([com[2], com[1], com[0]]).astype(int)


def report_window(volume: Volume) -> WindowPreset:
    """The window the viewer opens the image with (core.windows.initial_window)."""
    return initial_window(volume)


def box_centre(box_zyx) -> np.ndarray:
    """Source (x, y, z) index at the middle of a (z, y, x) inclusive-exclusive box."""
    return np.array([(lo + hi - 1) // 2 for lo, hi in box_zyx][::-1], int)


def key_images(volume: Volume, labelmap: LabelMap, value: Optional[int] = None, opacity: float = 0.35,
               focus: Optional[np.ndarray] = None, views=None) -> list[KeyImage]:
    """The planes ``views`` (default all three; axial only for a 2D image) through ``focus`` (a
    source (x, y, z) index), else through the centre of segment ``value`` or the largest one."""
    grid = DisplayGrid.for_geometry(volume.geometry)
    fill = volume.array.min() if not volume.is_color else 0
    image = grid.to_display(volume.array, fill=fill)
    labels = grid.to_display(labelmap.array, order=0)
    focus_world = volume.geometry.index_to_world(focus_index(labelmap, value) if focus is None else focus)
    focus = grid.clamp_index(grid.grid.world_to_index(focus_world))
    w = report_window(volume)
    lo, hi = w.center - w.width / 2, w.center + w.width / 2
    lut = label_lut(labelmap.table, opacity=1.0).astype(np.float32) / 255.0
    out = []
    # one plane for a 2D image or a cine loop (its frame under the focus), with no patient letters
    # when the file gives no orientation
    views = (plane_view(volume.geometry),) if volume.is_planar else (views or VIEWS)
    letters = LETTERS if volume.orientation_known else {v: ("", "", "", "") for v in VIEWS}
    for view in views:
        k = int(focus[grid.sliced_axis(view)])
        plane = grid.take_slice(image, view, k)
        grey = plane[..., :3].astype(np.float32) / 255 if volume.is_color else \
            np.repeat(grey_ramp(lo, hi, plane)[..., None], 3, axis=2).astype(np.float32) / 255
        lab = grid.take_slice(labels, view, k)
        fill = lut[lab]
        edge = lut[outline(lab)]
        rgb = grey * (1 - opacity * fill[..., 3:]) + opacity * fill[..., :3] * fill[..., 3:]
        rgb = rgb * (1 - edge[..., 3:]) + edge[..., :3] * edge[..., 3:]
        if not ROWS_DOWN[view]:
            rgb = rgb[::-1]
        rs, cs = grid.plane_spacing(view)
        out.append(KeyImage(view, (rgb * 255).round().astype(np.uint8), (rgb.shape[1] * cs, rgb.shape[0] * rs),
                            letters[view], k))
    return out
