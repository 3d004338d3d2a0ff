"""The shown heat map in the 3D view: nested iso-surfaces of the active map (half and four fifths of
its range, never below its threshold) over the segment surfaces, coloured from the map's colour
bar, translucent so the segments stay visible. Surfaces are built once per map and level; opacity
and visibility changes only restyle them."""
from __future__ import annotations

from typing import Optional

import numpy as np

LEVELS = (0.5, 0.8)  # fractions of the map's range
OPACITY = (0.25, 0.55)  # inner (higher) surfaces more opaque: the peak reads through the shell
MAX_VOXELS = 4_000_000  # meshed from a strided grid above this (a display surface)


def iso_codes(heat) -> list[int]:
    """The codes (0..255) the surfaces are drawn at for ``heat``."""
    floor = int(np.ceil((heat.threshold - heat.vmin) * 255.0 / (heat.vmax - heat.vmin)))
    return sorted({max(int(round(f * 255)), floor, 1) for f in LEVELS})


def iso_surface(heat, code: int):
    """vtkPolyData of ``heat`` at ``code`` in index*spacing space (placed by the image's matrix), or
    None if the map never reaches it."""
    from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D, vtkPolyDataNormals

    from surfaces.mesh import image_data

    codes = heat.codes
    if int(codes.max()) < code:
        return None
    step = max(1, int(np.ceil((codes.size / MAX_VOXELS) ** (1 / 3))))
    crop = np.ascontiguousarray(codes[::step, ::step, ::step]).astype(np.float32)
    contour = vtkFlyingEdges3D()
    contour.SetInputData(image_data(crop, np.asarray(heat.geometry.spacing) * step))
    contour.SetValue(0, code - 0.5)
    normals = vtkPolyDataNormals()
    normals.SetInputConnection(contour.GetOutputPort())
    normals.Update()
    poly = normals.GetOutput()
    return poly if poly.GetNumberOfPoints() else None


class Map3D:
    """Keeps ``view3d`` showing the model's active heat map as iso-surfaces while ``enabled``."""

    def __init__(self, view3d) -> None:
        self.view, self.model = view3d, view3d.model
        self.enabled = True
        self.actors: list = []
        self._cache: dict[tuple, object] = {}
        self._shown: Optional[tuple] = None
        self.model.subscribe("heatmaps", self.refresh)
        self.model.subscribe("image", self._image)

    def set_enabled(self, on: bool) -> None:
        self.enabled = on
        self.refresh()

    def _image(self) -> None:
        self._cache.clear()
        self.actors.clear()  # the view removed every prop for the new image
        self._shown = None

    def _remove(self) -> None:
        for actor in self.actors:
            self.view.renderer.RemoveActor(actor)
        self.actors.clear()
        self._shown = None

    def refresh(self) -> None:
        if not self.view.available:
            return
        heat = self.model.active_heatmap()
        live = {id(h) for h in self.model.heatmaps}
        self._cache = {k: v for k, v in self._cache.items() if k[0] in live}
        if not self.enabled or heat is None or not heat.visible or heat.opacity <= 0:
            if self.actors:
                self._remove()
                self.view.render()
            return
        key = (id(heat), tuple(iso_codes(heat)), heat.colormap)
        if key != self._shown:
            self._build(heat, key)
        for actor, alpha in zip(self.actors, OPACITY[-len(self.actors):] if self.actors else ()):
            actor.GetProperty().SetOpacity(alpha * min(1.0, heat.opacity / 0.6))
        self.view.render()

    def _build(self, heat, key) -> None:
        import pyqtgraph as pg
        from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

        from surfaces.mesh import placement_matrix

        self._remove()
        colors = pg.colormap.get(heat.colormap).getLookupTable(nPts=256, alpha=False)
        for code in key[1]:
            poly = self._cache.get((id(heat), code), False)
            if poly is False:
                poly = self._cache[(id(heat), code)] = iso_surface(heat, code)
            if poly is None:
                continue
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(poly)
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.SetUserMatrix(placement_matrix(heat.geometry))
            actor.GetProperty().SetColor(*[c / 255 for c in colors[code][:3]])
            self.view.renderer.AddActor(actor)
            self.actors.append(actor)
        self._shown = key
