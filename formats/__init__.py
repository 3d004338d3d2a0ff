"""Reading and writing files: DICOM series, SEG and RTSTRUCT (formats.dicom), NIfTI, NRRD, MHA and
other ITK formats, raster images, label tables and the bundled samples; decoding of untrusted files
in a confined child process (sandbox), atomic writes and size limits. Returns core objects. It imports
core and the file libraries (pydicom, highdicom, SimpleITK, nibabel...), never Qt, VTK, torch or the
layers above it (inference, store, export, app, cli, gui)."""
