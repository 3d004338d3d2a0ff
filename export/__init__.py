"""Exports of a reviewed case: DICOM SEG and RTSTRUCT, label maps, surface files (STL/OBJ/VTP, glTF
scene), key images, statistics and the PDF report, each written atomically (nothing half-written is
left behind). It imports core, formats and surfaces (VTK lazily, for meshes and the offscreen
picture), never Qt, torch, inference or store, nor the layers above it (app, cli, gui)."""
