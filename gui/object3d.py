"""The interactive tool's object under construction in the 3D view: one surface in the object's own
colour (amber, as on the slices), rebuilt whenever the object changes (a prompt's result, an undone
prompt) and removed when there is none (Accept, New object, a new image).

The surface is the segments' display surface (gui.view3d.display_surface: cropped to the object's
box, strided above SURFACE_MAX_VOXELS, smoothed) built in a thread of its own, so a prompt's
result shows on the slices at once and the mesh never holds the UI up; only the newest object is
meshed and shown. It is drawn in a layer over the view's renderer (same camera), translucent, so an
object deep inside the volume rendering (a ventricle in a brain) is still seen; the view's deferred
coarse/full renders draw it."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
from PySide6 import QtCore

OPACITY = 0.8  # over the volume rendering: what lies in front of the object still shows a little


def object_surface(mask: np.ndarray, geometry):
    """(vtkPolyData in index*spacing space, the grid placing it) of a bool (z, y, x) mask on
    ``geometry``, or (None, None) if it is empty. Meshed on the object's box alone, as its own grid:
    the whole-image scans a label map makes cost more than the mesh of a small object."""
    from core.editing import bounding_box
    from core.geometry import Geometry
    from core.labels import LabelMap
    from gui.view3d import display_surface

    box = bounding_box(mask)
    if box is None:
        return None, None
    start = [box[2].start, box[1].start, box[0].start]  # (x, y, z)
    crop = np.ascontiguousarray(mask[box]).view(np.uint8)
    grid = Geometry(crop.shape[::-1], geometry.spacing, geometry.index_to_world(start), geometry.direction)
    return display_surface(LabelMap(crop, grid), 1, tuple(slice(0, n) for n in crop.shape)), grid


class ObjectSurface(QtCore.QObject):
    """Keeps ``view3d`` showing the newest object (``set_mask``) as one actor."""

    _built = QtCore.Signal(int, object)  # generation, (polydata, grid) (from the mesh thread)

    def __init__(self, view3d) -> None:
        super().__init__(view3d)
        self.view = view3d
        self.actor = None
        self.renderer = None  # made when the first object shows
        self.seconds: Optional[float] = None  # mask given -> actor in the renderer, for the newest object
        self.pending = False  # a mesh for the newest mask is being built
        self._gen = 0
        self._asked_at = 0.0
        self._pool: Optional[ThreadPoolExecutor] = None
        self._built.connect(self._install)
        view3d.model.subscribe("image", self._image)

    def set_mask(self, mask: Optional[np.ndarray], geometry=None) -> None:
        """Show ``mask`` (bool, on ``geometry``'s grid); None removes the object."""
        if not self.view.available:
            return
        self._gen += 1
        if mask is None or geometry is None or not mask.any():
            self.pending = False
            self._remove()
            return
        self.pending, self._asked_at = True, time.perf_counter()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="object3d")
        # read, never written, by the thread: each result is a new array (app.actions.interactive)
        self._pool.submit(self._build, self._gen, mask, geometry)

    def _build(self, gen: int, mask: np.ndarray, geometry) -> None:
        if gen != self._gen:
            return  # a newer object came while this one waited: mesh that one only
        try:
            built = object_surface(mask, geometry)
        except Exception as exc:  # noqa: BLE001  (a display surface: the slices still show the object)
            from app import logs

            logs.error(exc, "object surface")
            built = None, None
        try:
            self._built.emit(gen, built)
        except RuntimeError:
            pass  # the window closed while meshing

    def _install(self, gen: int, built) -> None:
        if gen != self._gen or self.view._finalized:
            return
        poly, geometry = built
        self.pending = False
        self._remove(render=False)
        if poly is not None:
            from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

            from gui.interactive_overlay import OBJECT_RGB
            from surfaces.mesh import placement_matrix

            mapper = vtkPolyDataMapper()
            mapper.SetInputData(poly)
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.SetUserMatrix(placement_matrix(geometry))
            prop = actor.GetProperty()
            prop.SetColor(*[c / 255 for c in OBJECT_RGB])
            prop.SetSpecular(0.3)
            prop.SetOpacity(OPACITY)
            prop.BackfaceCullingOn()  # one translucent shell: no far side blended over the near one
            self.layer().AddActor(actor)
            self.actor = actor
        self.seconds = time.perf_counter() - self._asked_at
        self.view.render()

    def layer(self):
        """The renderer the object is drawn by: a layer over the view's own, sharing its camera, so
        the object shows through the volume rendering and the segments it lies inside."""
        if self.renderer is None:
            from vtkmodules.vtkRenderingCore import vtkRenderer

            self.renderer = vtkRenderer()
            self.renderer.SetLayer(1)
            self.renderer.InteractiveOff()  # the mouse turns the view's camera (this one's, too)
            self.renderer.SetActiveCamera(self.view.renderer.GetActiveCamera())
            self.view.window.SetNumberOfLayers(2)
            self.view.window.AddRenderer(self.renderer)
        return self.renderer

    def _remove(self, render: bool = True) -> None:
        if self.actor is not None:
            self.layer().RemoveActor(self.actor)
            self.actor = None
            if render:
                self.view.render()

    def _image(self) -> None:
        self._gen += 1
        self.pending = False
        self._remove(render=False)

    def shutdown(self) -> None:
        self._gen += 1
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
