"""PySide6 user interface: a thin layer over core, formats, inference and store."""
