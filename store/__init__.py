"""The corrections store: one record per reviewed case (image hash, model and version, who, when,
what changed; no patient identifiers), in SQLite (WAL) with a schema version and migrations, opened as
a context manager; the training dataset it yields, source metadata for re-linking DICOM, and the
crash-recovery file. Writes are atomic. It imports core and formats, never inference, torch, export,
Qt or VTK, nor the layers above it (app, cli, gui)."""
