"""3D view (VTK): volume rendering of the image, a smoothed surface per segment, the three slice
planes. VTK's world is patient LPS; image and surfaces are built in index space scaled by spacing,
and placed by a user matrix holding direction and origin, so oblique volumes sit where they are.

A segment's surface is rebuilt only when that segment changed, from the bounding box it occupies.
The interactive tool's object under construction is one more such surface (gui.object3d).

Rendering never sits on the crosshair's path: a volume render on a CPU (software GL) takes seconds,
so every change only asks for a render; once the view has been left alone for RENDER_DELAY_MS it
renders coarsely (fewer rays, longer steps), and after STILL_DELAY_MS more at full quality. A newer
request cancels both, so a run of crosshair moves costs one coarse and one full render at the end.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.display import VIEWS
from core.labels import LabelMap
from core.viewer_model import ViewerModel
from core.volume import Volume
from surfaces.mesh import image_data, placement_matrix, segment_surface

# above this the rendered copy is strided: its texture, and the samples along each ray, stay few
# enough for a CPU (software GL) to draw; 512x512x300 CT is rendered from every third voxel
VOLUME_RENDER_MAX_VOXELS = 8_000_000
TRANSFER_PRESETS = ("CT bone", "CT soft tissue", "MR default")
RENDER_DELAY_MS = 200  # the view rests this long before a coarse render
STILL_DELAY_MS = 600  # and this long more before the full-quality one
COARSE_IMAGE_SAMPLE = 4  # coarse volume render: one ray per 4x4 pixels ...
COARSE_STEP = 3.0  # ... stepping three voxels at a time (~5x cheaper than full quality)
FULL_QUALITY_RATE = 0.0001  # frames per second asked of a full-quality render (VTK's still rate)
SURFACE_DELAY_MS = 400  # after the last edit
# per segment's bounding box, before striding: a smoothed display mesh from 300k voxels already
# has about as many triangles as the view has pixels; more costs software GL time on every render
# and ~250 bytes per triangle (VTK's arrays, the mapper's buffers and GL's copy of them)
SURFACE_MAX_VOXELS = 300_000


def _vtk():
    """The VTK classes this view uses: the modules that hold them, not vtkmodules.all (which
    imports every VTK module and would hold the window up by a second)."""
    from types import SimpleNamespace

    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL render window)
    from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
    from vtkmodules.vtkFiltersSources import vtkPlaneSource
    from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
    from vtkmodules.vtkRenderingCore import (vtkActor, vtkColorTransferFunction, vtkPolyDataMapper, vtkRenderer,
                                             vtkVolume, vtkVolumeProperty, vtkWindowToImageFilter)
    from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkOpenGLGPUVolumeRayCastMapper

    return SimpleNamespace(**{k: v for k, v in locals().items() if k.startswith("vtk") and k != "vtkmodules"})


def vtk_available() -> bool:
    """A VTK render window inside Qt needs a real (or Xvfb) display, not the offscreen platform."""
    app = QtGui.QGuiApplication.instance()
    platform = app.platformName() if app is not None else os.environ.get("QT_QPA_PLATFORM", "")
    return platform not in ("offscreen", "minimal") and not os.environ.get("DELINEATE_NO_3D")


def _transfer(preset: str, volume: Volume):
    vtk = _vtk()
    color, opacity = vtk.vtkColorTransferFunction(), vtk.vtkPiecewiseFunction()
    if preset == "CT bone":
        pts = [(-1000, (0, 0, 0), 0), (150, (0.55, 0.25, 0.15), 0), (300, (0.9, 0.8, 0.65), 0.2),
               (700, (1, 0.95, 0.85), 0.6), (1500, (1, 1, 1), 0.85)]
    elif preset == "CT soft tissue":
        pts = [(-1000, (0, 0, 0), 0), (-300, (0.6, 0.4, 0.3), 0), (-50, (0.85, 0.6, 0.5), 0.08),
               (60, (0.85, 0.35, 0.3), 0.25), (300, (1, 0.95, 0.85), 0.5), (1500, (1, 1, 1), 0.8)]
    else:
        sample = volume.array[:: max(1, volume.array.shape[0] // 32)].astype(np.float32)
        lo, mid, hi = np.percentile(sample, [50, 80, 99.5])
        pts = [(lo, (0, 0, 0), 0), (mid, (0.75, 0.7, 0.65), 0.15), (hi, (1, 1, 1), 0.7)]
    for value, rgb, alpha in pts:
        color.AddRGBPoint(float(value), *rgb)
        opacity.AddPoint(float(value), float(alpha))
    return color, opacity


def default_transfer(volume: Volume) -> str:
    return "CT bone" if volume.modality == "CT" else "MR default"


class SurfaceCache:
    """One smoothed surface per segment, rebuilt only for segments that changed."""

    def __init__(self) -> None:
        self.polydata: dict[int, object] = {}
        self.bbox: dict[int, tuple[slice, slice, slice]] = {}

    def build_all(self, labelmap: LabelMap) -> None:
        from scipy import ndimage

        self.polydata.clear()
        self.bbox.clear()
        boxes = ndimage.find_objects(labelmap.array)
        for value0, box in enumerate(boxes):
            if box is not None:
                self.bbox[value0 + 1] = box
                self.polydata[value0 + 1] = self._surface(labelmap, value0 + 1, box)

    def update(self, labelmap: LabelMap, values, region: Optional[tuple[slice, slice, slice]] = None) -> None:
        """Rebuild ``values``. ``region`` (z, y, x slices) bounds what changed, so the search for
        each segment's extent is limited to its old box plus that region."""
        for v in values:
            box = self._extent(labelmap, int(v), region)
            if box is None:
                self.polydata.pop(int(v), None)
                self.bbox.pop(int(v), None)
            else:
                self.bbox[int(v)] = box
                self.polydata[int(v)] = self._surface(labelmap, int(v), box)

    def _extent(self, labelmap: LabelMap, v: int, region) -> Optional[tuple]:
        from core.editing import bounding_box, union_box

        old = self.bbox.get(v)
        search = tuple(slice(0, n) for n in labelmap.array.shape) if region is None or old is None \
            else union_box([old, region])
        box = bounding_box(labelmap.array[search] == v)
        if box is None:
            return None
        return tuple(slice(s.start + b.start, s.start + b.stop) for s, b in zip(search, box))

    @staticmethod
    def _surface(labelmap: LabelMap, value: int, box):
        return display_surface(labelmap, value, box)


def display_surface(labelmap: LabelMap, value: int, box):
    """The 3D view's surface of one label within ``box`` (segments, and the interactive object)."""
    # big segments are meshed from a strided grid: a smoothed display surface gains nothing from
    # millions of triangles, and they would cost memory (twice, with software GL) and time
    poly = segment_surface(labelmap, value, box, max_voxels=SURFACE_MAX_VOXELS)
    if poly is not None and poly.GetPolys().CanConvertToFixedSize32BitStorage():
        # triangles only: 32-bit indices and no offsets array (12 instead of 32 bytes a triangle)
        poly.GetPolys().ConvertToFixedSize32BitStorage()
    return poly


def _vtk_widget(parent: QtWidgets.QWidget):
    """VTK's Qt widget, whose native window leaves its ancestors alien (``parent`` must not be a
    window that is yet to be reparented: its native window, and VTK's in it, would be destroyed)."""
    from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor

    class Widget(QVTKRenderWindowInteractor):
        def winId(self):  # VTK's constructor asks for it at once
            self.setAttribute(QtCore.Qt.WidgetAttribute.WA_DontCreateNativeAncestors)
            return super().winId()

    return Widget(parent)


class View3D(QtWidgets.QWidget):
    """The VTK render window, following the viewer model."""

    def __init__(self, model: ViewerModel, session=None, parent=None) -> None:
        super().__init__(parent)
        self.model, self.session = model, session
        self.surfaces = SurfaceCache()
        self.transfer = "MR default"
        self.show_volume = True
        self._actors: dict[int, object] = {}
        self._plane_actors: dict[str, object] = {}
        self._planes_stale = False  # the crosshair moved since the planes were placed
        self._volume_actor = None
        self._surface_source = None
        self._finalized = False
        self.renders = {"coarse": 0, "full": 0}  # how often each quality was drawn (tests, benches)
        self.rendered_cursor = None  # the crosshair (world) the last render showed
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.available = vtk_available()
        if not self.available:
            note = QtWidgets.QLabel("3D view needs a display (not available on the offscreen platform)")
            note.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            lay.addWidget(note)
            return
        vtk = _vtk()
        import vtkmodules.qt

        vtkmodules.qt.PyQtImpl = "PySide6"
        # VTK draws into a native window; by default Qt then gives its ancestors and every sibling
        # of it and of them a native window too (the slice views, the status bar, the side panel)
        # and flushes each to the display server on its own: a slice change was four flushes, not one
        QtWidgets.QApplication.setAttribute(QtCore.Qt.ApplicationAttribute.AA_DontCreateNativeWidgetSiblings)
        self.widget = _vtk_widget(self)
        lay.addWidget(self.widget)
        self.renderer = vtk.vtkRenderer()
        self.renderer.SetBackground(0.08, 0.08, 0.12)
        self.renderer.SetBackground2(0.25, 0.25, 0.32)
        self.renderer.GradientBackgroundOn()
        self.window = self.widget.GetRenderWindow()
        self.window.AddRenderer(self.renderer)
        # no multisampling: with software GL it multiplies the cost of every surface pixel
        self.window.SetMultiSamples(0)
        # every frame, also those the mouse's rotations draw, shows the planes where the crosshair is
        self.window.AddObserver("StartEvent", lambda *_: self._planes_stale and self._place_planes())
        self.software_gl: Optional[bool] = None  # known at the first frame
        self.renderer.AddObserver("StartEvent", self._draw_actors_one_at_a_time)
        style = vtk.vtkInteractorStyleTrackballCamera()
        interactor = self.window.GetInteractor()
        interactor.SetInteractorStyle(style)
        # rotating or zooming with the mouse renders at the interactive rate (the mapper coarsens to
        # keep up), also on release; the full-quality frame follows once the view rests
        interactor.SetStillUpdateRate(interactor.GetDesiredUpdateRate())
        style.AddObserver("EndInteractionEvent", lambda *_: self._still_timer.start())
        self.widget.Initialize()
        self._render_timer = QtCore.QTimer(self)  # coarse render once changes rest
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_DELAY_MS)
        self._render_timer.timeout.connect(self._coarse_render)
        self._still_timer = QtCore.QTimer(self)  # full quality after a longer rest
        self._still_timer.setSingleShot(True)
        self._still_timer.setInterval(STILL_DELAY_MS)
        self._still_timer.timeout.connect(self.render_now)
        self._dirty: set[int] = set()
        self._dirty_region = None
        self._surface_timer = QtCore.QTimer(self)
        self._surface_timer.setSingleShot(True)
        self._surface_timer.setInterval(SURFACE_DELAY_MS)
        self._surface_timer.timeout.connect(self.flush_surfaces)
        for event, fn in (("image", self._on_image), ("cursor", self._on_cursor),
                          ("segments", self._on_segments), ("time", self._on_time)):
            model.subscribe(event, fn)
        from gui.object3d import ObjectSurface

        self.object = ObjectSurface(self)  # the interactive tool's object under construction
        if session is not None:
            from app.session import InteractiveChanged, LabelsEdited, SurfacesChanged

            session.subscribe(LabelsEdited, lambda e: self.update_segments(e.values, e.edit.box))
            session.subscribe(SurfacesChanged, lambda _e: self._sync_actors())
            session.subscribe(InteractiveChanged, lambda e: self.object.set_mask(
                e.mask, session.volume.geometry if session.volume is not None else None))

    @property
    def hidden_surfaces(self) -> set[int]:
        return self.session.hidden_surfaces if self.session is not None else set()

    # -- image -------------------------------------------------------------------------------
    def _on_image(self) -> None:
        vtk = _vtk()
        self.renderer.RemoveAllViewProps()
        self._actors.clear()
        self._plane_actors.clear()
        self.surfaces = SurfaceCache()
        self._surface_source = None
        self._volume_actor = None
        vol = self.model.volume
        if vol is None:
            self.render()
            return
        self.transfer = default_transfer(vol)
        if not vol.is_color and min(vol.geometry.size) > 1 and not vol.is_cine:  # a loop's frames are no volume
            img = self._volume_image(vol)
            # the GPU ray caster itself (VTK's OpenGL2 backend has it wherever VTK renders at all), not
            # the smart mapper, which hides the image sample distance the coarse renders lower
            mapper = vtk.vtkOpenGLGPUVolumeRayCastMapper()
            mapper.SetInputData(img)
            prop = vtk.vtkVolumeProperty()
            prop.ShadeOn()
            prop.SetInterpolationTypeToLinear()
            actor = vtk.vtkVolume()
            actor.SetMapper(mapper)
            actor.SetProperty(prop)
            actor.SetUserMatrix(placement_matrix(vol.geometry))
            actor.SetVisibility(self.show_volume)
            self._volume_actor = actor
            self.renderer.AddVolume(actor)
            self.set_transfer(self.transfer, render=False)
        for view in VIEWS:
            src = vtk.vtkPlaneSource()
            mapper = vtk.vtkPolyDataMapper()
            mapper.SetInputConnection(src.GetOutputPort())
            actor = vtk.vtkActor()
            actor.SetMapper(mapper)
            from gui.slice_view import VIEW_COLORS

            actor.GetProperty().SetColor(*[c / 255 for c in QtGui.QColor(VIEW_COLORS[view]).getRgb()[:3]])
            actor.GetProperty().SetRepresentationToWireframe()
            actor.GetProperty().SetLineWidth(2)
            actor.GetProperty().LightingOff()
            self._plane_actors[view] = (src, actor)
            self.renderer.AddActor(actor)
        self._on_cursor(render=False)
        self.reset_camera()

    def _volume_image(self, vol):
        """The volume rendering's input: ``vol`` strided to at most VOLUME_RENDER_MAX_VOXELS."""
        stride = max(1, int(np.ceil((vol.array.size / VOLUME_RENDER_MAX_VOXELS) ** (1 / 3))))
        return image_data(vol.array[::stride, ::stride, ::stride], vol.geometry.spacing * stride)

    def _on_time(self) -> None:
        """Another time point of a series in the same volume: the rendering shows its voxels (same
        grid, transfer function, camera and surfaces)."""
        if self._volume_actor is not None and self.model.volume is not None:
            self._volume_actor.GetMapper().SetInputData(self._volume_image(self.model.volume))
            self.render()

    def set_transfer(self, preset: str, render: bool = True) -> None:
        self.transfer = preset
        if self._volume_actor is not None:
            color, opacity = _transfer(preset, self.model.volume)
            prop = self._volume_actor.GetProperty()
            prop.SetColor(color)
            prop.SetScalarOpacity(opacity)
        if render:
            self.render()

    def set_volume_visible(self, on: bool) -> None:
        self.show_volume = on
        if self._volume_actor is not None:
            self._volume_actor.SetVisibility(on)
        self.render()

    def reset_camera(self) -> None:
        """Anterior view, head up (the patient facing the viewer)."""
        cam = self.renderer.GetActiveCamera()
        cam.SetFocalPoint(0, 0, 0)
        cam.SetPosition(0, -1, 0)
        cam.SetViewUp(0, 0, 1)
        self.renderer.ResetCamera()
        self.render()

    # -- slice planes ------------------------------------------------------------------------------
    def _on_cursor(self, render: bool = True) -> None:
        # placed when a frame is drawn: a crosshair drag moves them many times a render
        self._planes_stale = True
        if not render:
            self._place_planes()
        elif self._plane_actors:
            self.render()

    def _place_planes(self) -> None:
        self._planes_stale = False
        if not self._plane_actors:
            return
        grid = self.model.display.grid
        lo = grid.index_to_world([-0.5, -0.5, -0.5])
        hi = grid.index_to_world(np.asarray(grid.size) - 0.5)
        c = self.model.cursor_world()
        for view, (src, _actor) in self._plane_actors.items():
            axis = self.model.display.sliced_axis(view)
            a, b = [m for m in range(3) if m != axis]
            o, p1, p2 = lo.copy(), lo.copy(), lo.copy()
            o[axis] = p1[axis] = p2[axis] = c[axis]
            p1[a], p2[b] = hi[a], hi[b]
            src.SetOrigin(*o)
            src.SetPoint1(*p1)
            src.SetPoint2(*p2)

    # -- segments ------------------------------------------------------------------------------
    def _on_segments(self) -> None:
        lm = self.model.labelmap
        if lm is None:
            self._surface_source = None
            for actor in self._actors.values():
                self.renderer.RemoveActor(actor)
            self._actors.clear()
            self.render()
            return
        if self._surface_source is not lm:
            self._surface_source = lm
            self.surfaces.build_all(lm)
            self._sync_actors(force=True)
        else:
            self._sync_actors()

    def rebuild_surfaces(self) -> None:
        if self.model.labelmap is not None:
            self.surfaces.build_all(self.model.labelmap)
            self._sync_actors(force=True)

    def update_segments(self, values, region=None) -> None:
        """Mark ``values`` stale after an edit; their surfaces (only theirs) are rebuilt once editing
        pauses, so painting never waits for meshing."""
        self._dirty |= {int(v) for v in values}
        if region is not None:
            r = self._dirty_region
            self._dirty_region = region if r is None else tuple(
                slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(r, region))
        self._surface_timer.start()

    def flush_surfaces(self) -> None:
        """Rebuild the stale surfaces now."""
        self._surface_timer.stop()
        if not self._dirty or self.model.labelmap is None:
            return
        values, region = sorted(self._dirty), self._dirty_region
        self._dirty, self._dirty_region = set(), None
        self.surfaces.update(self.model.labelmap, values, region)
        self._sync_actors(force_values=set(values))

    def _sync_actors(self, force: bool = False, force_values: set[int] = frozenset()) -> None:
        vtk = _vtk()
        lm = self.model.labelmap
        for v in list(self._actors):
            if v not in self.surfaces.polydata or force or v in force_values:
                self.renderer.RemoveActor(self._actors.pop(v))
        for v, poly in self.surfaces.polydata.items():
            if v not in self._actors:
                mapper = vtk.vtkPolyDataMapper()
                mapper.SetInputData(poly)
                mapper.ScalarVisibilityOff()
                actor = vtk.vtkActor()
                actor.SetMapper(mapper)
                actor.SetUserMatrix(placement_matrix(lm.geometry))
                self._actors[v] = actor
                self.renderer.AddActor(actor)
            lab = lm.table.get(v)
            actor = self._actors[v]
            rgb = lab.color if lab else (200, 200, 200)
            actor.GetProperty().SetColor(*[c / 255 for c in rgb])
            actor.SetVisibility(v not in self.model.hidden and v not in self.hidden_surfaces)
        self.render()

    # -- output -----------------------------------------------------------------------------------
    def render(self) -> None:
        """Ask for a render: coarse once nothing changed for RENDER_DELAY_MS, then full quality after
        STILL_DELAY_MS more. Returns at once; a newer call cancels the pending ones."""
        if self.available and not self._finalized:
            self._still_timer.stop()
            self._render_timer.start()

    @property
    def render_pending(self) -> bool:
        return self.available and (self._render_timer.isActive() or self._still_timer.isActive())

    def _coarse_render(self) -> None:
        mapper = self._volume_actor.GetMapper() if self._volume_actor is not None else None
        if mapper is None or not self._volume_actor.GetVisibility():
            self.render_now()  # surfaces and planes alone are quick: no second pass
            return
        spacing, step = np.asarray(mapper.GetInput().GetSpacing()), mapper.GetSampleDistance()
        mapper.AutoAdjustSampleDistancesOff()
        mapper.SetImageSampleDistance(COARSE_IMAGE_SAMPLE)
        mapper.SetSampleDistance(float(COARSE_STEP * spacing.min()))
        try:
            self._draw("coarse")
        finally:
            mapper.SetImageSampleDistance(1.0)
            mapper.SetSampleDistance(step)
            mapper.AutoAdjustSampleDistancesOn()  # full quality when still, coarser while rotating
        self._still_timer.start()

    def render_now(self) -> None:
        """Render at full quality now (cancels the pending renders)."""
        if self.available and not self._finalized:
            self._render_timer.stop()
            self._still_timer.stop()
            self._draw("full")

    def _draw_actors_one_at_a_time(self, *_) -> None:
        """With software GL (llvmpipe), each actor's mapper first waits until what was drawn before it
        is rasterized. llvmpipe holds every triangle of a frame (~250 bytes each, with the inputs of
        their lighting) until the frame ends or 36 MiB are held: ~35 MiB for the six segments and the
        heat map's shells of a CT, the top of the window's peak memory. The frame is the same."""
        if self.software_gl is None:
            self.software_gl = "llvmpipe" in (self.window.ReportCapabilities() or "")
        if not self.software_gl:
            return
        for actor in self.renderer.GetActors():
            mapper = actor.GetMapper()
            if mapper is not None and not getattr(mapper, "waits_for_earlier_draws", False):
                mapper.AddObserver("StartEvent", self._finish_earlier_draws)
                mapper.waits_for_earlier_draws = True  # VTK keeps a wrapper's attributes with its object

    def _finish_earlier_draws(self, *_) -> None:
        if self.software_gl:  # (a test switches it off to compare the frames)
            self.window.WaitForCompletion()

    def _draw(self, quality: str) -> None:
        self.renders[quality] += 1
        self.rendered_cursor = self.model.cursor_world() if self.model.display is not None else None
        if quality == "full":
            self.window.SetDesiredUpdateRate(FULL_QUALITY_RATE)  # all the time it takes: every ray
        self.window.Render()

    def screenshot(self) -> QtGui.QImage:
        """The rendered frame (grabbing a native GL widget through Qt gives black)."""
        if not self.available:
            return self.grab().toImage()
        vtk = _vtk()
        from vtkmodules.util.numpy_support import vtk_to_numpy

        self.render_now()
        w2i = vtk.vtkWindowToImageFilter()
        w2i.SetInput(self.window)
        w2i.ReadFrontBufferOff()
        w2i.Update()
        out = w2i.GetOutput()
        w, h, _ = out.GetDimensions()
        rgb = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)[::-1, :, :3].copy()
        return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()

    def finalize(self) -> None:
        """Release the GL context while Qt's window still exists (avoids crashes at exit)."""
        if self.available and not self._finalized:
            self._finalized = True
            self.object.shutdown()
            self._render_timer.stop()
            self._still_timer.stop()
            self.window.Finalize()
            self.widget.close()
