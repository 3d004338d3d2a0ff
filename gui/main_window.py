"""The main window: three slice views and a 3D view around one ViewerModel, the segment list,
window presets, open/recent/drag-and-drop, screenshots, a status bar that reads out the voxel
under the mouse, and loading in a worker with progress and Cancel."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from core.display import VIEWS
from core.errors import Cancelled, DelineateError
from core.geometry import Geometry
from core.volume import Volume
from gui.dialogs import CompareDialog, SeriesDialog, ShortcutsDialog, show_error
from gui.edit_panel import EditPanel
from gui.explain_panel import ExplainPanel
from gui.heat_panel import HeatPanel
from gui.segment_panel import SegmentPanel
from gui.shortcuts import key_for
from gui.slice_view import SliceView
from gui.view3d import TRANSFER_PRESETS, View3D
from gui.workers import TaskBar
from gui.worklist import WorklistPanel
from core.viewer_model import ViewerModel

LAYOUTS = ("conventional", "four_up", "2d", "single")
AUTOSAVE_MS = 30_000
MAX_RECENT = 10


class MainWindow(QtWidgets.QMainWindow):
    loaded = QtCore.Signal()  # a volume (or a segmentation) finished loading

    def __init__(self, settings: Optional[QtCore.QSettings] = None) -> None:
        super().__init__()
        self.settings = settings or QtCore.QSettings("Delineate", "Delineate")
        self.model = ViewerModel()
        self.views = {v: SliceView(self.model, v) for v in VIEWS}
        self.view3d = View3D(self.model)
        self.segments = SegmentPanel(self.model)
        self.segments.surface_toggled.connect(self._surface_toggled)
        self.heat_panel = HeatPanel(self.model)
        self.segmentation = None  # the last model run: probabilities for explanations
        self.case_uncertainty = None  # from the last uncertainty map, saved with corrections
        self.explain_panel = ExplainPanel(self.model, self)
        self.edit_panel = EditPanel(self.model, self)
        self.worklist = WorklistPanel(self)
        self.tasks = TaskBar()
        self.probe_label = QtWidgets.QLabel("Open an image: File → Open, or drop a file or folder here")
        # a new text must not re-layout the status bar on every crosshair move
        self.probe_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.probe_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.statusBar().addWidget(self.probe_label, 1)
        self.statusBar().addPermanentWidget(self.tasks)
        self._layout_name = "conventional"
        self._before_single = "conventional"
        self._focused_view = "axial"
        self._last_error = None
        self.central = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(self.central)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(2)
        self.setCentralWidget(self.central)
        self._build_side_panel()
        self._build_actions()
        self.set_layout("conventional")
        for name, view in self.views.items():
            view.cursor_hover.connect(self._show_probe)
            view.graphics.installEventFilter(self)
        self.model.subscribe("cursor", lambda: self._show_probe(None))
        self.model.subscribe("window", self._sync_window_box)
        self.setAcceptDrops(True)
        self._source = ""
        self._autosaved_edit = None
        self._autosave_timer = QtCore.QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._autosave_timer.start()
        self.resize(1400, 900)
        self.setWindowTitle("Delineate")

    # -- construction -------------------------------------------------------------------------------
    def _build_side_panel(self) -> None:
        panel = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(panel)
        box = QtWidgets.QGroupBox("Window / level")
        form = QtWidgets.QFormLayout(box)
        self.window_box = QtWidgets.QComboBox()
        self.window_box.activated.connect(self._preset_chosen)
        self.window_text = QtWidgets.QLabel()
        form.addRow("Preset", self.window_box)
        form.addRow("C / W", self.window_text)
        lay.addWidget(box)
        box3d = QtWidgets.QGroupBox("3D view")
        form3d = QtWidgets.QFormLayout(box3d)
        self.transfer_box = QtWidgets.QComboBox()
        self.transfer_box.addItems(TRANSFER_PRESETS)
        self.transfer_box.currentTextChanged.connect(self._transfer_chosen)
        self.volume_check = QtWidgets.QCheckBox("Volume rendering")
        self.volume_check.setChecked(True)
        self.volume_check.toggled.connect(self.view3d.set_volume_visible if self.view3d.available else
                                          lambda _on: None)
        form3d.addRow("Transfer", self.transfer_box)
        form3d.addRow("", self.volume_check)
        lay.addWidget(box3d)
        # tabs keep the panel short: segments and tools / explanations / the store's worklist
        tabs = QtWidgets.QTabWidget()
        seg_tab = QtWidgets.QWidget()
        seg_lay = QtWidgets.QVBoxLayout(seg_tab)
        self.segments.table.setMinimumHeight(150)
        seg_lay.addWidget(self.segments, 1)
        editbox = QtWidgets.QGroupBox("Edit")
        QtWidgets.QVBoxLayout(editbox).addWidget(self.edit_panel)
        seg_lay.addWidget(editbox)
        explain_tab = QtWidgets.QWidget()
        ex_lay = QtWidgets.QVBoxLayout(explain_tab)
        explainbox = QtWidgets.QGroupBox("Explain")
        QtWidgets.QVBoxLayout(explainbox).addWidget(self.explain_panel)
        ex_lay.addWidget(explainbox)
        heatbox = QtWidgets.QGroupBox("Heat maps")
        QtWidgets.QVBoxLayout(heatbox).addWidget(self.heat_panel)
        ex_lay.addWidget(heatbox)
        ex_lay.addStretch(1)
        tabs.addTab(seg_tab, "Segments")
        tabs.addTab(explain_tab, "Explain")
        tabs.addTab(self.worklist, "Worklist")
        self.tabs = tabs
        lay.addWidget(tabs, 1)
        dock = QtWidgets.QDockWidget("Panel")
        dock.setObjectName("panel")
        scroll = QtWidgets.QScrollArea()  # small screens: the panel scrolls instead of squeezing
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        dock.setWidget(scroll)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setMinimumWidth(330)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)

    def _action(self, menu: QtWidgets.QMenu, aid: Optional[str], text: str, slot, shortcut: str = None,
                checkable: bool = False) -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        key = shortcut or (key_for(aid) if aid else None)
        if key:
            act.setShortcut(QtGui.QKeySequence(key))
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        menu.addAction(act)
        self.addAction(act)  # shortcuts work with the menu bar hidden, too
        if aid:
            self.actions_by_id[aid] = act
        return act

    def _build_actions(self) -> None:
        self.actions_by_id: dict[str, QtGui.QAction] = {}
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "open", "&Open image…", self.open_dialog)
        self._action(f, "open_folder", "Open &DICOM folder…", self.open_folder_dialog)
        self._action(f, "open_seg", "Load &segmentation…", self.open_segmentation_dialog)
        self._action(f, "open_heat", "Load &heat map…", self.open_heatmap_dialog)
        self.recent_menu = f.addMenu("Open &recent")
        self._fill_recent()
        f.addSeparator()
        self._action(f, "export", "&Export segmentation / report…", self.export_dialog)
        f.addSeparator()
        self._action(f, "screenshot_view", "Screenshot of &view…", lambda: self.screenshot_dialog(False))
        self._action(f, "screenshot_window", "Screenshot of &window…", lambda: self.screenshot_dialog(True))
        f.addSeparator()
        self._action(f, "quit", "&Quit", self.close)
        v = mb.addMenu("&View")
        for name, text in (("conventional", "Three slices + 3D"), ("four_up", "Four-up"),
                           ("2d", "Slices only"), ("single", "Maximise view under focus")):
            self._action(v, f"layout_{name}", text, lambda _=False, n=name: self.toggle_layout(n))
        v.addSeparator()
        self._action(v, "reset_view", "&Reset views", self.reset_views)
        self._action(v, "toggle_segments", "Show / hide segments", self.toggle_segments)
        self._action(v, "toggle_outline", "Segment outline", lambda: self.segments.outline.toggle())
        self._action(v, "opacity_down", "Segment opacity down",
                     lambda: self.segments.opacity.setValue(self.segments.opacity.value() - 10))
        self._action(v, "toggle_heat", "Show / hide heat maps", self.toggle_heatmaps)
        self._action(v, "opacity_up", "Segment opacity up",
                     lambda: self.segments.opacity.setValue(self.segments.opacity.value() + 10))
        ed = mb.addMenu("&Edit")
        self._action(ed, "undo", "&Undo", lambda: self.edit_panel.undo())
        self._action(ed, "redo", "&Redo", lambda: self.edit_panel.redo())
        self._action(ed, "tool_paint", "&Paint", lambda: self.edit_panel.tool.setCurrentText("Paint"))
        self._action(ed, "tool_erase", "&Erase", lambda: self.edit_panel.tool.setCurrentText("Erase"))
        self._action(ed, "tool_navigate", "&Navigate", lambda: self.edit_panel.tool.setCurrentText("Navigate"))
        self._action(ed, "new_segment", "New &segment", lambda: self.edit_panel.new_segment())
        seg = mb.addMenu("&Segment")
        self._action(seg, "run_default", "Run the &default model", self.run_default_model)
        self._action(seg, "run_model", "Run a &model…", self.run_model_dialog)
        self._action(seg, "compare_model", "&Compare with another model…", lambda: self.run_model_dialog(compare=True))
        self._action(seg, None, "&Import a model…", self.import_model_dialog)
        seg.addSeparator()
        self._action(seg, "save_review", "&Save correction (in review)", lambda: self.save_correction("in_review"))
        self._action(seg, "approve", "&Approve and save", lambda: self.save_correction("approved"))
        self._action(seg, None, "Re&ject and save…", lambda: self.save_correction("rejected"))
        seg.addSeparator()
        self._action(seg, None, "Re&train the model on approved corrections", self.retrain_model)
        self.window_menu = mb.addMenu("&Window")
        self._action(self.window_menu, "preset_next", "Next preset", self.next_preset)
        h = mb.addMenu("&Help")
        self._action(h, "help_shortcuts", "&Shortcuts", lambda: ShortcutsDialog(self).exec())
        self._action(h, None, "&About", lambda: QtWidgets.QMessageBox.about(
            self, "Delineate", "Delineate — review and correct AI segmentations.\n"
                               "Research software: not for clinical use."))

    # -- layouts --------------------------------------------------------------------------------------
    def set_layout(self, name: str) -> None:
        for w in list(self.views.values()) + [self.view3d]:
            self.grid.removeWidget(w)
            w.setVisible(False)
        for r in range(3):
            self.grid.setRowStretch(r, 0)
        for c in range(3):
            self.grid.setColumnStretch(c, 0)
        a, c, s, v3 = self.views["axial"], self.views["coronal"], self.views["sagittal"], self.view3d
        if name == "conventional":  # Slicer's: 3D on top, the three slices in a row below
            place = [(v3, 0, 0, 1, 3), (a, 1, 0, 1, 1), (c, 1, 1, 1, 1), (s, 1, 2, 1, 1)]
        elif name == "four_up":
            place = [(a, 0, 0, 1, 1), (v3, 0, 1, 1, 1), (c, 1, 0, 1, 1), (s, 1, 1, 1, 1)]
        elif name == "2d":
            place = [(a, 0, 0, 1, 1), (c, 0, 1, 1, 1), (s, 0, 2, 1, 1)]
        elif name == "single":
            focus = self.view3d if self._focused_view == "3d" else self.views[self._focused_view]
            place = [(focus, 0, 0, 1, 1)]
        else:
            raise ValueError(f"unknown layout {name!r}; one of {LAYOUTS}")
        for w, r, col, rs, cs in place:
            self.grid.addWidget(w, r, col, rs, cs)
            w.setVisible(True)
            self.grid.setRowStretch(r, 1)
            self.grid.setColumnStretch(col, 1)
        self._layout_name = name

    def toggle_layout(self, name: str) -> None:
        if name == "single" and self._layout_name == "single":
            name = self._before_single
        elif name == "single":
            self._before_single = self._layout_name
        self.set_layout(name)

    @property
    def layout_name(self) -> str:
        return self._layout_name

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() in (QtCore.QEvent.Type.FocusIn, QtCore.QEvent.Type.Enter):
            for name, view in self.views.items():
                if view.graphics is obj:
                    self._focused_view = name
        return False

    def reset_views(self) -> None:
        for view in self.views.values():
            view.reset_zoom()
        if self.view3d.available and self.model.volume is not None:
            self.view3d.reset_camera()

    # -- opening ----------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open image", self._last_dir(),
            "Images (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.png *.tif *.tiff *.dcm DICOMDIR);;All files (*)")
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open DICOM folder", self._last_dir())
        if path:
            self.open_path(path)

    def open_segmentation_dialog(self) -> None:
        if self.model.volume is None:
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Load segmentation", self._last_dir(), "Label maps (*.nii *.nii.gz *.nrrd *.seg.nrrd *.mha);;All (*)")
        if path:
            self.open_segmentation(path)

    def open_heatmap_dialog(self) -> None:
        if self.model.volume is None:
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Load heat map (a scalar image on this image's grid)", self._last_dir(),
            "Images (*.nii *.nii.gz *.nrrd *.mha);;All (*)")
        if path:
            self.open_heatmap(path)

    def open_heatmap(self, path: str) -> None:
        from core.overlay import HeatMap
        from formats.io import read_image

        geometry = self.model.volume.geometry

        def fn(progress, cancel, _partial):
            values = read_image(path, progress, cancel)
            if values.is_color or not values.geometry.same_grid(geometry, tol=1e-4):
                raise DelineateError(f"{path}: a heat map must be a grey image on the open image's grid "
                                     f"(size {geometry.size}); this one is {values.geometry.size}")
            return HeatMap.from_values(Path(path).name.split(".")[0], values.array, geometry)

        self.tasks.start(f"Loading {Path(path).name}", fn, self._heat_loaded, lambda exc: self._failed(path, exc))

    def _heat_loaded(self, heat) -> None:
        self.model.add_heatmap(heat)
        self.loaded.emit()

    def _last_dir(self) -> str:
        recent = self.recent()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def open_path(self, path: str, series: Optional[str] = None) -> None:
        """Open a file or folder in a worker; a folder with several series asks which one."""
        from formats.io import kind_of

        path = str(self._resolve_sample(path))
        try:
            kind = kind_of(path)
        except DelineateError as exc:
            show_error(self, path, exc)
            return
        if kind == "dicom" and Path(path).is_dir() and series is None:
            from formats.io import list_series  # scanned in a child process (formats.sandbox)

            self.tasks.start(f"Scanning {Path(path).name}", lambda p, c, _part: list_series(path, p, c),
                             lambda found: self._series_found(path, found),
                             lambda exc: self._failed(path, exc))
            return
        self._load(path, lambda p, c, part: self._read(path, series, p, c, part))

    @staticmethod
    def _resolve_sample(path: str) -> str:
        from formats import samples

        return samples.path(path) if path in samples.names() and not Path(path).exists() else path

    @staticmethod
    def _read(path, series, progress, cancel, partial):
        from formats.io import read_image

        return read_image(path, progress, cancel, series,
                          on_first_slice=lambda k, plane, geo: partial((k, plane, geo)))

    def _series_found(self, path: str, found: list) -> None:
        if len(found) == 1:
            info = found[0]
        else:
            dlg = SeriesDialog(path, found, self)
            self._series_dialog = dlg
            if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted or dlg.chosen() is None:
                return
            info = dlg.chosen()
        self.load_series_info(path, info)

    def load_series_info(self, path: str, info) -> None:
        from formats.io import load_series  # decoded in a child process (formats.sandbox)

        def fn(progress, cancel, partial):
            return load_series(info, progress, cancel, lambda k, plane, geo: partial((k, plane, geo)))

        self._load(path, fn)

    def _load(self, path: str, fn) -> None:
        self.tasks.start(f"Opening {Path(path).name}", fn, lambda vol: self._loaded(path, vol),
                         lambda exc: self._failed(path, exc), self._first_slice)

    def _first_slice(self, payload) -> None:
        """Show the stack's middle slice while the rest loads (only if nothing else is open)."""
        k, plane, geo = payload
        if self.model.volume is not None and not getattr(self.model.volume, "_preview", False):
            return
        origin = geo.index_to_world([0, 0, k])
        g = Geometry((geo.size[0], geo.size[1], 1), geo.spacing, origin, geo.direction)
        preview = Volume(np.asarray(plane)[np.newaxis], g, description="loading…")
        preview._preview = True
        self.model.set_volume(preview)
        self._fill_presets()

    def _loaded(self, path: str, volume: Volume) -> None:
        self._source = str(path)
        self.case_uncertainty = None
        keep = self.model.volume is not None and getattr(self.model.volume, "_preview", False)
        self.model.set_volume(volume, keep_cursor=keep)
        self._add_recent(path)
        self._fill_presets()
        self.transfer_box.blockSignals(True)
        if self.view3d.available:
            self.transfer_box.setCurrentText(self.view3d.transfer)
        self.transfer_box.blockSignals(False)
        name = volume.description or Path(path).name
        self.setWindowTitle(f"Delineate — {name}")
        for w in volume.warnings:
            self.statusBar().showMessage(f"Warning: {w}", 15000)
        self._show_probe(None)
        self.loaded.emit()

    def _failed(self, path: str, exc) -> None:
        if getattr(self.model.volume, "_preview", False):
            self.model.clear()  # drop the half-loaded preview
        if isinstance(exc, Cancelled):
            self.statusBar().showMessage(f"Opening {path} cancelled", 8000)
            return
        show_error(self, path, exc)

    def open_segmentation(self, path: str) -> None:
        from formats.io import read_labelmap

        volume = self.model.volume
        self.tasks.start(f"Loading {Path(path).name}", lambda p, c, _part: read_labelmap(path, volume),
                         self.set_labelmap, lambda exc: self._failed(path, exc))

    def set_labelmap(self, labelmap) -> None:
        try:
            self.model.set_labelmap(labelmap)
        except DelineateError as exc:
            show_error(self, "segmentation", exc)
            return
        self.loaded.emit()

    # -- models ---------------------------------------------------------------------------------------
    def _registry(self):
        from inference.registry import Registry

        return Registry()

    def run_default_model(self) -> None:
        vol = self.model.volume
        if vol is None:
            return
        try:
            card = self._registry().default_for(vol.modality, 2 if vol.is_2d else 3)
        except DelineateError as exc:
            show_error(self, "model registry", exc)
            return
        self.run_model(card)

    def run_model_dialog(self, compare: bool = False) -> None:
        from gui.model_dialog import ModelDialog

        if self.model.volume is None:
            return
        reg = self._registry()
        cards = reg.cards()
        vol = self.model.volume
        try:
            default = reg.default_for(vol.modality, 2 if vol.is_2d else 3)
        except DelineateError:
            default = None
        if compare and self.model.labelmap is None:
            self.statusBar().showMessage("Run a model first: the comparison is with the mask on screen", 8000)
            return
        dlg = ModelDialog(cards, reg.problems, default, self, run_text="Compare" if compare else "Run")
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted and dlg.chosen() is not None:
            (self.compare_model if compare else self.run_model)(dlg.chosen(), dlg.device.currentText())

    def import_model_dialog(self) -> None:
        from gui.import_dialog import ImportDialog

        dlg = ImportDialog(self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.import_model(dlg.argv())

    def import_model(self, argv: list[str]) -> None:
        import contextlib
        import io

        import main as cli

        def fn(_p, _c, _part):
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                    args = cli.build_parser().parse_args(["import-model", *argv])
                    args.func(args)  # raises DelineateError with the reason; the error dialog shows it
            except SystemExit as exc:
                raise DelineateError(f"import needs more information: {exc}") from None
            return out.getvalue()

        self.tasks.start("Importing model", fn, lambda text: self.statusBar().showMessage(
            f"Imported: {text.splitlines()[0] if text else '?'}", 15000), lambda exc: self._failed(argv[1], exc))

    def run_model(self, card, device: str = "auto") -> None:
        """Segment the open image in a worker; the result becomes the editable label map."""
        from inference.runner import segment

        volume = self.model.volume
        self.tasks.start(f"Running {card.name}", lambda p, c, _part: segment(volume, card, p, c, device),
                         self._segmented, lambda exc: self._failed(card.id, exc))

    def compare_model(self, card, device: str = "auto") -> None:
        """Run another model on this image and compare it with the mask on screen: per-label Dice /
        HD95 and a disagreement heat map. The mask being edited stays as it is."""
        from core.compare import compare_models
        from core.overlay import HeatMap
        from inference.runner import segment

        volume, current = self.model.volume, self.model.labelmap.copy()
        mine = self.segmentation.card.id if self.segmentation is not None else "the mask on screen"

        def fn(p, c, _part):
            seg = segment(volume, card, p, c, device)
            rows, differ = compare_models(current, seg.labels)
            return seg, rows, differ

        def done(result) -> None:
            seg, rows, differ = result
            if volume is not self.model.volume:
                return
            name = f"Disagreement: {mine} vs {card.id}"
            for h in [h for h in self.model.heatmaps if h.name == name]:
                self.model.remove_heatmap(h.name)
            # 1 sits mid-scale: viridis teal, apart from red/yellow segments and from white tissue
            self.model.add_heatmap(HeatMap.from_values(name, differ.astype(np.float32), volume.geometry, vmin=0, vmax=2,
                                                       colormap="viridis", opacity=0.75, threshold=0.5))
            self.last_comparison = (card, rows, int(differ.sum()))
            CompareDialog(mine, card, rows, float(differ.mean()), self).open()

        self.tasks.start(f"Comparing with {card.name}", fn, done, lambda exc: self._failed(card.id, exc))

    def _segmented(self, seg) -> None:
        if seg.labels.geometry is not self.model.volume.geometry:
            return  # another image was opened meanwhile
        self.segmentation = seg  # probabilities kept for explainability and uncertainty
        self.set_labelmap(seg.labels)
        self.statusBar().showMessage(f"{seg.card.id} v{seg.card.version} on {seg.device}: {seg.seconds:.1f} s "
                                     f"— research use only, not for clinical use", 20000)

    # -- corrections store --------------------------------------------------------------------------
    def reviewer(self) -> str:
        name = str(self.settings.value("reviewer", "") or "")
        if not name:
            name, ok = QtWidgets.QInputDialog.getText(self, "Reviewer", "Your name as the reviewer of record "
                                                      "(stored with each correction; change it in the settings file):")
            name = name.strip() if ok else ""
            if name:
                self.settings.setValue("reviewer", name)
        return name

    def ai_draft(self):
        """The model's mask for this image, else the label map as it was before this session's edits."""
        seg, lm, vol = self.segmentation, self.model.labelmap, self.model.volume
        ai = seg.labels if seg is not None and seg.labels.geometry is vol.geometry else lm
        if ai is lm and self.edit_panel.history is not None and self.edit_panel.history.done:
            ai = lm.copy()
            for e in reversed(self.edit_panel.history.done):
                ai.array[e.box] = e.before
        return ai

    def export_dialog(self) -> None:
        from gui.export_dialog import ExportDialog

        vol = self.model.volume
        if vol is None or self.model.labelmap is None:
            self.statusBar().showMessage("Nothing to export: open an image and segment it first", 8000)
            return
        seg = self.segmentation
        stem = (Path(vol.source).name.split(".")[0] if vol.source else "case") or "case"
        dlg = ExportDialog(self._last_dir(), f"{stem}-seg", seg is not None and seg.labels.geometry is vol.geometry,
                           self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.export_case(**dlg.values())

    def export_case(self, fmt: str, path: str, deidentify: bool = False, fractional: bool = False,
                    compress: bool = False) -> None:
        """Export what is on screen (a copy: editing may go on meanwhile) in a worker."""
        from export.case import ExportRequest, export
        from gui.export_dialog import export_failed

        seg, lm, vol = self.segmentation, self.model.labelmap, self.model.volume
        ai = self.ai_draft()
        own = seg is not None and seg.labels.geometry is vol.geometry
        req = ExportRequest(fmt, vol, lm.copy(), Path(path), ai=None if ai is lm else ai.copy(),
                            probabilities=seg.probabilities[1:] if fractional and own else None,
                            deidentify=deidentify, compress=compress, model=seg.card.report_dict() if own else None,
                            reviewer=str(self.settings.value("reviewer", "") or ""))
        self.tasks.start(f"Exporting {fmt}", lambda p, c, _part: export(req, p, c),
                         lambda written: (setattr(self, "last_export", written), self.statusBar().showMessage(
                             f"Exported {written[0]}" + (f" and {len(written) - 1} more files" if len(written) > 1
                                                         else ""), 15000)),
                         lambda exc: export_failed(self, path, exc))

    def save_correction(self, state: str, reason: str = "", root=None) -> None:
        """Save the AI mask and the corrected one, with provenance, to the corrections store."""
        from store.corrections import CorrectionsStore

        seg, lm, vol = self.segmentation, self.model.labelmap, self.model.volume
        if vol is None or lm is None:
            return
        if state == "rejected" and not reason:
            reason, ok = QtWidgets.QInputDialog.getText(self, "Reject", "Why is this segmentation rejected?")
            if not ok or not reason.strip():
                return
        reviewer = self.reviewer()
        ai = self.ai_draft()
        history = self.edit_panel.history
        uncertainty = self.case_uncertainty
        # the card as it is now, so the case exports with it even after the model is removed
        card = dict(seg.card.report_dict(), card=seg.card.to_dict()) if seg else None

        def fn(_p, _c, _part):
            st = CorrectionsStore(root)  # opened in the worker: SQLite connections stay in their thread
            try:
                return st.save(vol, ai if ai is not lm else lm.copy(), lm.copy(), reviewer=reviewer,
                               model_id=seg.card.id if seg else "", model_version=seg.card.version if seg else "",
                               edits=history.summary() if history else {}, state=state, reason=reason,
                               uncertainty=uncertainty, card=card)
            finally:
                st.close()

        def saved(r) -> None:
            from store import recovery

            recovery.clear()  # the store has it now

        self.tasks.start("Saving correction", fn, lambda r: (saved(r), self.statusBar().showMessage(
            f"Saved correction {r[1]} of case {r[0]} ({state.replace('_', ' ')})", 15000),
            self.worklist.refresh() if root is None else None, self.loaded.emit()),
            lambda exc: self._failed("corrections store", exc))

    def retrain_model(self, root=None, out_root=None, iterations: int = 200) -> None:
        """Fine-tune the current (or default) model on the store's approved corrections, in the worker."""
        from inference.registry import Registry, user_models_dir
        from inference.training.from_store import retrain
        from store.corrections import CorrectionsStore

        vol = self.model.volume
        reg = self._registry()
        try:
            base = self.segmentation.card if self.segmentation is not None else \
                reg.default_for(vol.modality if vol else "MR", 2 if vol is not None and vol.is_2d else 3)
        except DelineateError as exc:
            show_error(self, "model registry", exc)
            return
        versions = [c.version for c in reg.versions(base.id)]

        def fn(progress, cancel, _part):
            store = CorrectionsStore(root)
            try:
                return retrain(store, base, out_root or user_models_dir(), iterations, progress, cancel,
                               log=lambda m: None, versions=versions)
            finally:
                store.close()

        def done(card) -> None:
            m = {x.name: x.value for x in card.metrics}
            QtWidgets.QMessageBox.information(
                self, "Retrained", f"{card.id} v{card.version} (from v{card.parent_version}): held-out Dice "
                f"{m['Dice mean before (parent)']:.3f} -> {m['Dice mean after']:.3f} (change "
                f"{m['Dice change (paired mean)']:+.3f}, 95 % CI {m['Dice change 95% CI low']:+.3f} to "
                f"{m['Dice change 95% CI high']:+.3f} over {m['Held-out cases']:.0f} held-out cases).\n"
                + ("It is now the default model." if card.promoted else
                   "It is kept but NOT the default: " + card.notes.rsplit("NOT promoted: ", 1)[-1]))
            self.loaded.emit()

        self.tasks.start(f"Retraining {base.id}", fn, done, lambda exc: self._failed("retraining", exc))

    # -- crash recovery -----------------------------------------------------------------------------
    def autosave(self, wait: bool = False) -> bool:
        """Write the case in progress to the recovery file (in a thread) if it was edited since the
        last autosave. Returns whether a write was started."""
        import threading

        from store import recovery

        h = self.edit_panel.history
        last = h.done[-1] if h is not None and h.done else None
        if last is None or last is self._autosaved_edit or self.model.labelmap is None or not self._source:
            return False
        self._autosaved_edit = last
        vol, lm, source = self.model.volume, self.model.labelmap.copy(), self._source
        thread = threading.Thread(target=recovery.save, args=(vol, lm, source), daemon=True)
        thread.start()
        if wait:
            thread.join()
        return True

    def offer_recovery(self, ask: bool = True) -> bool:
        """If a recovery file is pending, offer to reopen its image with the unsaved edits."""
        from store import recovery

        meta = recovery.pending()
        if meta is None:
            return False
        if ask:
            answer = QtWidgets.QMessageBox.question(
                self, "Restore unsaved edits?",
                f"Delineate was closed with unsaved edits (autosaved {meta['saved']}) on:\n{meta['source']}\n\n"
                "Restore them?")
            if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                recovery.clear()
                return False

        def apply() -> None:
            self.loaded.disconnect(apply)
            restored = recovery.restore(self.model.volume)
            if restored is None:
                show_error(self, meta["source"], DelineateError("the image changed since the autosave; not restored"))
                return
            self.set_labelmap(restored)
            self.statusBar().showMessage(f"Restored the edits autosaved {meta['saved']}", 15000)

        self.loaded.connect(apply)
        self.open_path(meta["source"])
        return True

    # -- recent files -------------------------------------------------------------------------------
    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent() if p != path]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.recent():
            self.recent_menu.addAction(p, lambda p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.recent()))

    # -- drag and drop -------------------------------------------------------------------------------
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:
        urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if urls:
            ev.acceptProposedAction()
            self.open_path(urls[0])

    # -- window / level ------------------------------------------------------------------------------
    def _fill_presets(self) -> None:
        self.window_box.clear()
        for a in list(self.window_menu.actions())[1:]:
            self.window_menu.removeAction(a)
            self.removeAction(a)
        for n, p in enumerate(self.model.presets()):
            self.window_box.addItem(f"{p.name}  ({p.center:g} / {p.width:g})")
            act = QtGui.QAction(f"{p.name}  (C {p.center:g}, W {p.width:g})", self)
            if n < 9:
                act.setShortcut(QtGui.QKeySequence(str(n + 1)))
            act.triggered.connect(lambda _=False, n=n: self.apply_preset(n))
            self.window_menu.addAction(act)
            self.addAction(act)
        self._sync_window_box()

    def apply_preset(self, n: int) -> None:
        presets = self.model.presets()
        if 0 <= n < len(presets):
            self.model.set_window(presets[n])
            self.window_box.setCurrentIndex(n)

    def next_preset(self) -> None:
        n = len(self.model.presets())
        if n:
            self.apply_preset((self.window_box.currentIndex() + 1) % n)

    def _preset_chosen(self, n: int) -> None:
        self.apply_preset(n)

    def _sync_window_box(self) -> None:
        w = self.model.window
        self.window_text.setText(f"{w.center:.0f} / {w.width:.0f}")

    def _transfer_chosen(self, name: str) -> None:
        if self.view3d.available and self.model.volume is not None:
            self.view3d.set_transfer(name)

    # -- segments -----------------------------------------------------------------------------------
    def toggle_segments(self) -> None:
        values = self.segments.values()
        show = any(v in self.model.hidden for v in values)
        for v in values:
            self.model.set_visible(v, show)

    def toggle_heatmaps(self) -> None:
        on = not all(h.opacity == 0 for h in self.model.heatmaps)
        for h in self.model.heatmaps:
            h._shown_opacity = h.opacity if on else getattr(h, "_shown_opacity", 0.6)
            h.opacity = 0.0 if on else h._shown_opacity
        self.model.heatmap_changed()

    def _surface_toggled(self, value: int, on: bool) -> None:
        if self.view3d.available:
            (self.view3d.hidden_surfaces.discard if on else self.view3d.hidden_surfaces.add)(value)
            self.view3d._sync_actors()

    # -- status bar ---------------------------------------------------------------------------------
    def _show_probe(self, display_ijk) -> None:
        if self.model.volume is None or self.model.display is None:
            return
        p = self.model.probe(display_ijk)
        unit = " HU" if self.model.volume.modality == "CT" else ""
        parts = [f"voxel {tuple(p['index'])}" if p["index"] is not None else "outside the image",
                 "LPS ({:.1f}, {:.1f}, {:.1f}) mm".format(*p["world"])]
        if p["value"] is not None:
            v = p["value"]
            parts.append(f"value {v}" if isinstance(v, list) else f"value {v:g}{unit}")
        if p["label"] is not None:
            parts.append(f"label {p['label'][0]} {p['label'][1]}")
        self.probe_label.setText("   |   ".join(parts))

    # -- screenshots --------------------------------------------------------------------------------
    def screenshot(self, whole_window: bool = True, view: Optional[str] = None) -> QtGui.QImage:
        """The window (with the 3D frame composited in) or one view, as an image."""
        if not whole_window:
            name = view or self._focused_view
            return self.view3d.screenshot() if name == "3d" else self.views[name].screenshot()
        image = self.grab().toImage()
        if self.view3d.available and self.view3d.isVisible():
            frame = self.view3d.screenshot()
            top_left = self.view3d.mapTo(self, QtCore.QPoint(0, 0))
            target = QtCore.QRect(top_left, self.view3d.size())
            ratio = image.width() / max(1, self.width())
            target = QtCore.QRect(int(target.x() * ratio), int(target.y() * ratio),
                                  int(target.width() * ratio), int(target.height() * ratio))
            painter = QtGui.QPainter(image)
            painter.drawImage(target, frame)
            painter.end()
        return image

    def save_screenshot(self, path: str, whole_window: bool = True, view: Optional[str] = None) -> None:
        if not self.screenshot(whole_window, view).save(path, "PNG"):
            raise DelineateError(f"{path}: could not write the PNG")

    def screenshot_dialog(self, whole_window: bool) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save screenshot", self._last_dir(), "PNG (*.png)")
        if path:
            try:
                self.save_screenshot(path if path.lower().endswith(".png") else path + ".png", whole_window)
            except DelineateError as exc:
                show_error(self, path, exc)

    # -- teardown -----------------------------------------------------------------------------------
    def closeEvent(self, ev) -> None:
        self.autosave(wait=True)  # unsaved edits survive a normal close too, offered at the next start
        self.tasks.cancel()
        self.tasks.wait()
        self.view3d.finalize()
        super().closeEvent(ev)
