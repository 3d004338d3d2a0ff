"""DICOM reading (series, multi-frame, 2D) and writing of classic series."""
