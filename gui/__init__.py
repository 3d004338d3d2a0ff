"""The PySide6 user interface: main window, pyqtgraph slice views, the VTK 3D view, panels, dialogs
and the task runner that runs long work in a worker. Behaviour lives in app (the case session and its
actions); panels observe the session, never the main window. It is a top layer beside cli: it may
import app and everything below it, but nothing below imports gui or Qt (import-linter), and gui
does not import cli. torch is never imported before the window is shown."""
