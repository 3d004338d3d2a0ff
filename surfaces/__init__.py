"""Segment surfaces (VTK, no rendering): a label map's smoothed meshes and their placement in patient
space, shared by the 3D view (gui) and the mesh exports (export) so neither depends on the other.
Qt-free and torch-free; imports core only, and VTK, SciPy and NumPy (VTK and SciPy lazily, inside the
functions that use them)."""
