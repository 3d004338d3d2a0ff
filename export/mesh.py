"""Surface files: STL (binary), OBJ with a one-colour .mtl, or VTP. The surfaces themselves come from
``surfaces.mesh`` (shared with the 3D view)."""
from __future__ import annotations

from pathlib import Path


def write_surface(polydata, path: Path, color=None) -> None:
    """STL (binary), OBJ (with an .mtl colour) or VTP, by suffix."""
    from vtkmodules.vtkIOGeometry import vtkOBJWriter, vtkSTLWriter
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    suffix = path.suffix.lower()
    if suffix == ".stl":
        w = vtkSTLWriter()
        w.SetFileTypeToBinary()
    elif suffix == ".obj":
        w = vtkOBJWriter()
    elif suffix == ".vtp":
        w = vtkXMLPolyDataWriter()
    else:
        raise ValueError(f"unknown mesh format {suffix!r} (stl, obj, vtp)")
    w.SetFileName(str(path))
    w.SetInputData(polydata)
    if not w.Write():
        raise OSError(f"VTK could not write {path}")
    if suffix == ".obj" and color is not None:
        _add_material(path, color)


def _add_material(path: Path, color) -> None:
    """OBJ carries no colour itself: a one-material .mtl beside it, referenced from the .obj."""
    r, g, b = (c / 255.0 for c in color)
    mtl = path.with_suffix(".mtl")
    mtl.write_text(f"newmtl segment\nKd {r:.4f} {g:.4f} {b:.4f}\nKa 0 0 0\nd 1\n")
    text = path.read_text()
    path.write_text(f"mtllib {mtl.name}\nusemtl segment\n{text}")
