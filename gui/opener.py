"""Opening things in the window: images (file dialog, DICOM folder, recent files, drag and drop,
sample names), the series choice for a folder holding several, the first slice shown while a
series loads, segmentations and heat maps for the open image. The work is app.actions.opening in
the task runner."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6 import QtCore, QtWidgets

from app.actions import opening
from app.session import CaseSession
from core.errors import DelineateError
from gui.dialogs import SeriesDialog, show_error
from gui.shell import Shell

MAX_RECENT = 10
IMAGE_FILTER = "Images (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.png *.tif *.tiff *.dcm DICOMDIR);;All files (*)"


class Opener(QtCore.QObject):
    recent_changed = QtCore.Signal()

    def __init__(self, session: CaseSession, shell: Shell) -> None:
        super().__init__(shell)
        self.session, self.shell = session, shell
        self.series_dialog = None  # kept for tests while it is shown
        # the window's "unless the open case has unsaved corrections (ask), then call this"
        # (gui.case_controller.confirm_then); every way of opening an image comes through open_path
        self.confirm: Callable[[str, Callable[[], None]], None] = lambda _doing, go: go()

    # -- dialogs -----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.shell.widget, "Open image", self.shell.last_dir(), IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self.shell.widget, "Open DICOM folder", self.shell.last_dir())
        if path:
            self.open_path(path)

    def segmentation_dialog(self) -> None:
        from app.actions.segmentation_io import FILE_FILTER

        if self.session.volume is not None:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self.shell.widget, "Load segmentation", self.shell.last_dir(),
                                                            FILE_FILTER)
            if path:
                self.open_segmentation(path)

    def heatmap_dialog(self) -> None:
        if self.session.volume is not None:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self.shell.widget, "Load heat map (a scalar image on this image's grid)", self.shell.last_dir(),
                "Images (*.nii *.nii.gz *.nrrd *.mha);;All (*)")
            if path:
                self.open_heatmap(path)

    # -- images ------------------------------------------------------------------------------
    def open_path(self, path: str, series: Optional[str] = None) -> None:
        """Open a file or folder in a worker; a folder with several series asks which one. Unsaved
        corrections on the open case are saved, discarded or kept open first, as the user says."""
        self.confirm(f"opening {Path(str(path)).name}", lambda: self._open_path(path, series))

    def _open_path(self, path: str, series: Optional[str]) -> None:
        path = opening.resolve(str(path))
        try:
            folder = opening.needs_series_choice(path)
        except DelineateError as exc:
            show_error(self.shell.widget, path, exc)
            return
        if folder and series is None:
            self.shell.tasks.start(f"Scanning {Path(path).name}", lambda p, c, _part: opening.scan(path, p, c),
                                   lambda found: self._series_found(path, found), lambda exc: self.shell.failed(path, exc))
            return
        self._load(path, lambda p, c, part: opening.read(path, series, p, c, part))

    def _series_found(self, path: str, found: list) -> None:
        if len(found) == 1:
            info = found[0]
        else:
            self.series_dialog = dlg = SeriesDialog(path, found, self.shell.widget)
            if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted or dlg.chosen() is None:
                return
            info = dlg.chosen()
        self.load_series_info(path, info)

    def load_series_info(self, path: str, info) -> None:
        self._load(path, lambda p, c, part: opening.read_series(info, p, c, part))

    def _load(self, path: str, fn: Callable) -> None:
        self.shell.run(f"Opening {Path(path).name}", fn, lambda vol: self._loaded(path, vol), path, self._preview)

    def _preview(self, preview) -> None:
        """The stack's middle slice while the rest loads (only if nothing else is open)."""
        if self.session.volume is None or self.session.previewing:
            self.session.set_image(preview, preview=True)

    def _loaded(self, path: str, volume) -> None:
        self.session.set_image(volume, path)
        self.add_recent(path)
        for w in volume.warnings:
            self.shell.message(f"Warning: {w}", 15000)

    # -- layers on the open image ------------------------------------------------------------
    def open_segmentation(self, path: str) -> None:
        """Load a label map over the open image; edits not in the store are asked about first."""
        self.confirm(f"loading {Path(str(path)).name} over them", lambda: self._open_segmentation(path))

    def _open_segmentation(self, path: str) -> None:
        from app.actions.segmentation_io import load_segmentation

        volume = self.session.volume
        self.shell.run(f"Loading {Path(path).name}", lambda p, c, _part: load_segmentation(path, volume, p, c),
                       lambda lm: self.set_labelmap(lm) if volume is self.session.volume else None, path)

    def set_labelmap(self, labelmap, unsaved: bool = False) -> None:
        try:
            self.session.set_labelmap(labelmap, unsaved)
        except DelineateError as exc:
            show_error(self.shell.widget, "segmentation", exc)

    def open_heatmap(self, path: str) -> None:
        geometry = self.session.volume.geometry
        self.shell.run(f"Loading {Path(path).name}", lambda p, c, _part: opening.read_heatmap(path, geometry, p, c),
                       self.session.viewer.add_heatmap, path)

    # -- recent files (the list is the shell's: every file dialog starts from it) ------------------
    def add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.shell.recent() if p != path]
        self.shell.settings.setValue("recent", items[:MAX_RECENT])
        self.recent_changed.emit()
