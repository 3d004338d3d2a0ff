"""The domain, Qt-free and torch-free: Volume and Geometry (LPS; [z, y, x] arrays with (x, y, z)
spacing and origin, index<->world in one place), LabelMap and its LabelTable, edits as sparse diffs
with their history, the viewer's Qt-free display models, metrics, statistics, comparison and
resampling, the errors every layer raises and the progress/cancel protocol of long work. It imports
only the standard library, NumPy and SciPy (and surface-distance for metrics); every other package
may import core, and core imports none of them (import-linter)."""
