"""Exports of a reviewed case: DICOM objects, label maps, meshes, statistics and the report (Qt-free)."""
