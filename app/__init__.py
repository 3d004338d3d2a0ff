"""The application layer, Qt-free: `session.CaseSession` holds the state of the open case (image,
label map, edit history, locks, model run, maps, review state) and announces changes as typed
events; `actions` are the things a physician does to it (open, segment, compare, explain, edit,
save, retrain, export, import a model), plain functions with progress and cancel that the GUI runs
in its worker, the CLI with a progress bar and the tests directly. It may import inference, store,
export, formats and core (torch only inside functions); gui and cli sit above it."""
