"""Segment surfaces (VTK, no rendering): the 3D view's display meshes and the exported meshes.

Surfaces are extracted by flying edges at 0.5 on the segment's binary mask (cropped to its box),
smoothed by a windowed-sinc filter (which keeps volume, unlike Laplacian smoothing), and built in
"index x spacing" space; the grid's direction and origin place them in patient LPS millimetres
(``placement_matrix`` for the 3D view's actors, ``to_world`` for files), so oblique images sit where
they are.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from core.geometry import Geometry
from core.labels import LabelMap


def image_data(array: np.ndarray, spacing, origin=(0.0, 0.0, 0.0)):
    """A vtkImageData sharing ``array``'s memory ([z, y, x], so VTK's x is the fastest axis)."""
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData

    array = np.ascontiguousarray(array)
    img = vtkImageData()
    img.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    img.SetSpacing(*[float(s) for s in spacing])
    img.SetOrigin(*[float(o) for o in origin])
    scalars = numpy_to_vtk(array.reshape(-1), deep=False)
    scalars._numpy_ref = array  # VTK does not own numpy memory: keep it alive with the VTK array
    img.GetPointData().SetScalars(scalars)
    return img


def placement_matrix(geometry: Geometry):
    """vtkMatrix4x4 mapping (index * spacing) to LPS: direction and origin."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            m.SetElement(r, c, float(geometry.direction[r, c]))
        m.SetElement(r, 3, float(geometry.origin[r]))
    return m


def segment_surface(labelmap: LabelMap, value: int, box=None, max_voxels: Optional[int] = None,
                    iterations: int = 15, pass_band: float = 0.1):
    """Smoothed surface of one label in index*spacing space, or None if the label is absent.
    ``max_voxels`` meshes big boxes from a strided grid (display); exports pass None."""
    from scipy import ndimage
    from vtkmodules.vtkCommonDataModel import vtkPolyData
    from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D, vtkPolyDataNormals, vtkWindowedSincPolyDataFilter

    if box is None:
        boxes = ndimage.find_objects((labelmap.array == value).view(np.uint8))
        if not boxes or boxes[0] is None:
            return None
        box = boxes[0]
    n = np.prod([b.stop - b.start for b in box])
    step = 1 if not max_voxels else max(1, int(np.ceil((n / max_voxels) ** (1 / 3))))
    crop = np.pad((labelmap.array[box][::step, ::step, ::step] == value).astype(np.uint8), 1)
    sp = labelmap.geometry.spacing
    corner = [(box[2].start - step) * sp[0], (box[1].start - step) * sp[1], (box[0].start - step) * sp[2]]
    contour = vtkFlyingEdges3D()
    contour.SetInputData(image_data(crop, sp * step, corner))
    contour.SetValue(0, 0.5)
    contour.ComputeNormalsOff()
    smooth = vtkWindowedSincPolyDataFilter()
    smooth.SetInputConnection(contour.GetOutputPort())
    smooth.SetNumberOfIterations(iterations)
    smooth.SetPassBand(pass_band)
    smooth.NormalizeCoordinatesOn()
    smooth.BoundarySmoothingOff()
    normals = vtkPolyDataNormals()
    normals.SetInputConnection(smooth.GetOutputPort())
    normals.ConsistencyOn()
    normals.SplittingOff()
    normals.Update()
    out = vtkPolyData()
    out.ShallowCopy(normals.GetOutput())
    return out


def to_world(polydata, geometry: Geometry):
    """The surface moved from index*spacing space into patient LPS mm."""
    from vtkmodules.vtkCommonDataModel import vtkPolyData
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersGeneral import vtkTransformFilter

    t = vtkTransform()
    t.SetMatrix(placement_matrix(geometry))
    f = vtkTransformFilter()
    f.SetTransform(t)
    f.SetInputData(polydata)
    f.Update()
    out = vtkPolyData()
    out.ShallowCopy(f.GetPolyDataOutput())
    return out
