"""The segment surfaces as an offscreen VTK scene (EGL or X, whichever the build finds): a picture
for the report, or the whole scene as one glTF file (each segment a mesh in its colour, patient LPS
millimetres). Without an OpenGL context the picture is None and glTF export says why."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import DelineateError
from core.labels import LabelMap
from surfaces.mesh import segment_surface, to_world

log = logging.getLogger(__name__)
PICTURE_MAX_VOXELS = 2_000_000  # per segment box: a picture, not a measurement


def _scene(labelmap: LabelMap, size=(640, 640), max_voxels: Optional[int] = PICTURE_MAX_VOXELS):
    """(render window, renderer) holding one actor per segment, camera in front of the patient."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # no X: straight to EGL
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL window)
    from scipy import ndimage
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer, vtkRenderWindow

    ren = vtkRenderer()
    ren.SetBackground(0.08, 0.08, 0.1)
    boxes = ndimage.find_objects(labelmap.array)
    for lab in labelmap.table:
        box = boxes[lab.value - 1] if lab.value - 1 < len(boxes) else None
        if box is None:
            continue
        surf = to_world(segment_surface(labelmap, lab.value, box, max_voxels=max_voxels), labelmap.geometry)
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(surf)
        mapper.ScalarVisibilityOff()
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(*[c / 255 for c in lab.color])
        ren.AddActor(actor)
    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(*size)
    win.AddRenderer(ren)
    cam = ren.GetActiveCamera()
    cam.SetFocalPoint(0, 0, 0)
    cam.SetPosition(0, -1, 0)  # LPS: anterior is -y; the viewer stands in front of the patient
    cam.SetViewUp(0, 0, 1)
    cam.Azimuth(-25)
    cam.Elevation(15)
    ren.ResetCamera()
    return win, ren


def render_surfaces(labelmap: LabelMap, size=(640, 640)) -> Optional[np.ndarray]:
    """RGB uint8 (h, w, 3) of every segment's surface seen from the front (patient anterior)."""
    try:
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        win, _ren = _scene(labelmap, size)
        win.Render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(win)
        grab.Update()
        img = grab.GetOutput()
        w, h, _ = img.GetDimensions()
        rgb = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)[::-1, :, :3].copy()
        win.Finalize()
        return rgb
    except Exception as e:  # no GL context (bare server): the report says the 3D view is missing
        log.warning("no 3D snapshot: %s", e)
        return None


def write_gltf(labelmap: LabelMap, path: Path) -> None:
    """Every segment's full-resolution surface in one self-contained .gltf (data inlined)."""
    try:
        from vtkmodules.vtkIOExport import vtkGLTFExporter

        win, ren = _scene(labelmap, (64, 64), max_voxels=None)
        win.Render()
        exporter = vtkGLTFExporter()
        exporter.SetRenderWindow(win)
        exporter.SetActiveRenderer(ren)
        exporter.SetFileName(str(path))
        exporter.SetInlineData(True)
        exporter.SetSaveNormal(True)
        exporter.Write()
        win.Finalize()
    except Exception as e:
        raise DelineateError(f"glTF export needs an OpenGL context (EGL or X): {e}") from e
    if not Path(path).is_file():
        raise DelineateError(f"VTK wrote no glTF file at {path}")
