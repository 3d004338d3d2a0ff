"""The corrections store: one record per reviewed case (image hash, model and version, who, when,
what changed; no patient identifiers), indexed in SQLite (WAL; the default) or PostgreSQL (a team:
store.location, store.backend_*) with a schema version and migrations, opened as a context manager;
case assignment, locks and the audit trail (store.team); the training dataset it yields, source
metadata for re-linking DICOM, and the crash-recovery file. Writes are atomic. It imports core and
formats, never inference, torch, export, Qt or VTK, nor the layers above it (app, cli, gui)."""
