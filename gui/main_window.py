"""The main window: layout and menus around one case session. Three slice views and a 3D view
follow the session's viewer model; the side panel holds window/level, 3D settings, segments and
tools, explanations and the worklist; the status bar reads out the voxel under the mouse. What the
menus do lives in the controllers (gui.opener, gui.case_controller, gui.autosave), which run
app.actions in the task runner."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6 import QtCore, QtGui, QtWidgets

from app.logs import log_dir
from app.session import CaseSession, GuardChecked, ImageOpened
from core.display import VIEWS
from core.errors import DelineateError
from core.planar import plane_view
from core.time_series import time_series_of
from gui.autosave import Autosave
from gui.case_controller import CaseController
from gui.cine_bar import CineBar
from gui.dialogs import CANCEL, SAVE, ShortcutsDialog, show_error
from gui.edit_panel import EditPanel
from gui.explain_panel import ExplainPanel
from gui.heat_panel import HeatPanel
from gui.measure_panel import MeasurePanel
from gui.measure_tool import MeasureTool
from gui.opener import Opener
from gui.pacs_controller import PacsController
from gui.segment_panel import SegmentPanel
from gui.shell import Shell
from gui.shortcuts import key_for
from gui.slice_view import SliceView
from gui.steady_label import steady
from gui.throttle import Throttle
from gui.view3d import TRANSFER_PRESETS, View3D
from gui.window_level import WindowLevelBox
from gui.worklist import WorklistPanel

LAYOUTS = ("conventional", "four_up", "2d", "single", "image")  # image: one plane, for 2D images and loops


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, settings: Optional[QtCore.QSettings] = None, session: Optional[CaseSession] = None) -> None:
        super().__init__()
        self.session = session or CaseSession()
        self.model = self.session.viewer
        self.shell = Shell(self.session, settings or QtCore.QSettings("Delineate", "Delineate"), self,
                           lambda text, ms: self.statusBar().showMessage(text, ms))
        self.settings, self.tasks, self.loaded = self.shell.settings, self.shell.tasks, self.shell.loaded
        self.opener = Opener(self.session, self.shell)
        self.cases = CaseController(self.session, self.shell)
        self.autosaver = Autosave(self.session, self.shell, self.opener)
        self.pacs = PacsController(self.session, self.shell, self.opener)
        self.views = {v: SliceView(self.model, v) for v in VIEWS}
        self.view3d = View3D(self.model, self.session, self)  # a child from the start: see gui.view3d._vtk_widget
        self.segments = SegmentPanel(self.session)
        self.heat_panel = HeatPanel(self.model)
        self.heat_panel.attach_3d(self.view3d)  # the active map as iso-surfaces in 3D, switchable
        self.explain_panel = ExplainPanel(self.session, self.shell)
        self.explain_panel.attach(self.views)  # "Next region" outlines and zooms on every view
        self.edit_panel = EditPanel(self.session, self.shell)
        self.edit_panel.interactive.attach(self.views)  # the object under construction on every view
        self.edit_panel.attach(self.views)  # brush outline, scissors shape, level-tracing preview
        self.edit_panel.tool_changed.connect(self._tool_changed)
        self.measure = MeasureTool(self.session, self.shell, self)  # ruler, angle, ellipse ROI on every view
        self.measure.attach(self.views)
        self.measure.started.connect(lambda: self.edit_panel.tool.setCurrentText("Navigate"))
        self.measure.failed.connect(lambda text: self.statusBar().showMessage(text, 15000))
        self.measure_panel = MeasurePanel(self.session, self.measure)
        self.worklist = WorklistPanel(self.session, self.tasks)
        self.worklist.case_opened.connect(self._store_case_opened)
        # a message shown after another image was asked for (Next case's "Saved correction ...") is
        # about that step and outlives the opening; one from before it is about the image left
        self._said, self._asked_open = 0, None
        self.statusBar().messageChanged.connect(self._message_changed)
        self.worklist.save_current = lambda then: (self._open_asked(),
                                                   self.cases.save_then(then, root=self.worklist.root))
        self.opener.confirm = self.worklist.confirm = \
            lambda doing, go: (self._open_asked(), self.cases.confirm_then(doing, go, root=self.worklist.root))
        self.probe_label = QtWidgets.QLabel("Open an image: File → Open, or drop a file or folder here")
        # a new text must not re-layout the status bar on every crosshair move
        self.probe_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.probe_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        # opaque (the window colour it stood on): a new text repaints the label alone, not the main
        # window and status bar beneath it first
        self.probe_label.setAutoFillBackground(True)
        self.statusBar().addWidget(steady(self.probe_label), 1)  # nor re-layout the window (gui.steady_label)
        self.statusBar().addPermanentWidget(self.tasks)
        self._layout_name, self._before_single, self._focused_view = "conventional", "conventional", "axial"
        self._last_error = None  # the last error dialog (gui.dialogs.show_error keeps it here)
        self.banner = QtWidgets.QLabel()  # the out-of-distribution guard's warning, over the views
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #ffd43b; color: #212529; padding: 4px 8px; font-weight: bold")
        self.banner.hide()
        views = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(views)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(2)
        self.central = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(self.central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(views, 1)
        self.cine = CineBar(self.model)  # under the views; shows itself for multi-frame 2D images
        column.addWidget(self.cine)
        self.cine.failed.connect(lambda text: self.shell.message(text, 15000))
        self.setCentralWidget(self.central)
        self._build_actions()
        self.edit_panel.interactive.bind_actions(self.actions_by_id)
        self._build_side_panel()
        self.set_layout("conventional")
        # the probe follows the crosshair and the mouse at display rate, not at event rate (gui.throttle)
        self.probe = Throttle(self._show_probe, parent=self)
        for view in self.views.values():
            view.cursor_hover.connect(self.probe)
            view.graphics.installEventFilter(self)
        self.model.subscribe("cursor", lambda: self.probe(None))
        self.session.subscribe(ImageOpened, self._image_opened)
        self.session.subscribe(GuardChecked, self._guard_checked)
        self.worklist.failed.connect(lambda what, exc: show_error(self, what, exc))
        self.worklist.said.connect(lambda text: self.shell.message(text, 8000))
        self.opener.recent_changed.connect(self._fill_recent)
        self.setAcceptDrops(True)
        self._fit_to_screen()
        self.setWindowTitle("Delineate")

    # -- construction -------------------------------------------------------------------------------
    def _fit_to_screen(self) -> None:
        """Nine tenths of the screen's free area up to 1600x1000 (a fixed size overflowed small or
        HiDPI screens: QT_SCALE_FACTOR=2 halves the logical pixels)."""
        screen = QtGui.QGuiApplication.primaryScreen()
        free = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1400, 900)
        self.resize(min(1600, int(free.width() * 0.9)), min(1000, int(free.height() * 0.9)))
        if free.width() < 1100:  # a small (or HiDPI-scaled) screen: every pixel for the views and panel
            self.setWindowState(QtCore.Qt.WindowState.WindowMaximized)

    def toggle_side_panel(self) -> None:
        """Hide the side panel to give the views its room, or show it again."""
        self.side_dock.setVisible(self.side_dock.isHidden())

    def _build_side_panel(self) -> None:
        panel = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(panel)
        lay.setContentsMargins(4, 4, 4, 4)  # narrow margins: the panel's pages fit without sideways scrolling
        self.window_level = WindowLevelBox(self.model, self.window_menu)
        lay.addWidget(self.window_level)
        self.box3d = box3d = QtWidgets.QGroupBox("3D view")
        form3d = QtWidgets.QFormLayout(box3d)
        self.transfer_box = QtWidgets.QComboBox()
        self.transfer_box.addItems(TRANSFER_PRESETS)
        self.transfer_box.currentTextChanged.connect(
            lambda name: self.view3d.set_transfer(name) if self.view3d.available and self.model.volume else None)
        self.volume_check = QtWidgets.QCheckBox("Volume rendering")
        self.volume_check.setChecked(True)
        self.volume_check.toggled.connect(lambda on: self.view3d.set_volume_visible(on) if self.view3d.available
                                          else None)
        form3d.addRow("Transfer", self.transfer_box)
        form3d.addRow("", self.volume_check)
        lay.addWidget(box3d)
        # tabs keep the panel short: segments and tools / explanations / the store's worklist
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(_stack([(None, self.segments), ("Edit", self.edit_panel),
                                  ("Measurements", self.measure_panel)]), "Segments")
        self.tabs.addTab(_stack([("Explain", self.explain_panel), ("Heat maps", self.heat_panel)], stretch=True),
                         "Explain")
        self.tabs.addTab(self.worklist, "Worklist")
        lay.addWidget(self.tabs, 1)
        dock = QtWidgets.QDockWidget("Display, segments and review")
        dock.setObjectName("panel")
        scroll = QtWidgets.QScrollArea()  # small screens: the panel scrolls instead of squeezing
        scroll.setWidgetResizable(True)
        scroll.setWidget(panel)
        dock.setWidget(scroll)
        feature = QtWidgets.QDockWidget.DockWidgetFeature
        dock.setFeatures(feature.DockWidgetMovable | feature.DockWidgetClosable)  # back with View > Side panel
        self.side_dock = dock
        dock.setMinimumWidth(_panel_width(scroll, panel))
        self._panel_fit = _PanelFit(dock, scroll, panel)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        # View > Side panel is checked while the panel is shown, however it was hidden (Ctrl+0 or the
        # dock's ×); hidden, not merely unseen: a minimised window keeps the check (toggleViewAction's rule)
        shown = self.actions_by_id["toggle_panel"]
        shown.setCheckable(True)
        shown.setChecked(True)
        dock.visibilityChanged.connect(lambda _seen: shown.setChecked(not dock.isHidden()))

    def _action(self, menu: QtWidgets.QMenu, aid: Optional[str], text: str, slot) -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        if aid and key_for(aid):
            act.setShortcut(QtGui.QKeySequence(key_for(aid)))
        act.triggered.connect(slot)
        menu.addAction(act)
        self.addAction(act)  # shortcuts work with the menu bar hidden, too
        if aid:
            self.actions_by_id[aid] = act
        return act

    def _build_actions(self) -> None:
        self.actions_by_id: dict[str, QtGui.QAction] = {}
        op, cc, seg, ed = self.opener, self.cases, self.segments, self.edit_panel
        mb = self.menuBar()
        menus = {
            "&File": [("open", "&Open image…", op.open_dialog), ("open_folder", "Open &DICOM folder…",
                                                                   op.open_folder_dialog),
                      (None, "Open from &PACS…", self.pacs.open_browser),
                      ("open_seg", "Load &segmentation (label map, DICOM SEG, RTSTRUCT)…", op.segmentation_dialog),
                      ("open_heat", "Load &heat map…", op.heatmap_dialog), "recent", None,
                      ("export", "&Export segmentation / report…", cc.export_dialog),
                      (None, "Se&nd to PACS…", self.pacs.send_dialog), None,
                      ("screenshot_view", "Screenshot of &view…", lambda: self.screenshot_dialog(False)),
                      ("screenshot_window", "Screenshot of &window…", lambda: self.screenshot_dialog(True)), None,
                      ("quit", "&Quit", self.close)],
            "&View": [(f"layout_{n}", text, lambda _=False, n=n: self.toggle_layout(n)) for n, text in (
                ("conventional", "Three slices + 3D"), ("four_up", "Four-up"), ("2d", "Slices only"),
                ("single", "Maximise view under focus"), ("image", "One image plane (2D, cine)"))] + [
                ("toggle_panel", "Side &panel", self.toggle_side_panel),
                None, ("reset_view", "&Reset views", self.reset_views),
                ("toggle_segments", "Show / hide segments", seg.toggle_all),
                ("toggle_outline", "Segment outline", lambda: seg.outline.toggle()),
                ("opacity_down", "Segment opacity down", lambda: seg.opacity.setValue(seg.opacity.value() - 10)),
                ("toggle_heat", "Show / hide heat maps", self.model.toggle_heatmaps),
                ("opacity_up", "Segment opacity up", lambda: seg.opacity.setValue(seg.opacity.value() + 10))],
            "&Edit": [("undo", "&Undo", ed.undo), ("redo", "&Redo", self.session.redo)] + [
                (f"tool_{t.lower()}", f"&{t}", lambda _=False, t=t: ed.tool.setCurrentText(t))
                for t in ("Paint", "Erase", "Navigate")] + [("new_segment", "New &segment", ed.new_segment), None]
                + ed.interactive.menu_items() + ed.menu_items() + [None] + [
                (f"measure_{m}", f"Measure: {t}", lambda _=False, m=m: self.measure.set_mode(m))
                for m, t in (("ruler", "&ruler"), ("angle", "an&gle"), ("ellipse", "e&llipse ROI"))],
            "&Segment": [("run_default", "Run the &default model", cc.run_default_model),
                         ("run_model", "Run a &model…", cc.run_model_dialog),
                         ("compare_model", "&Compare with another model…", lambda: cc.run_model_dialog(compare=True)),
                         (None, "&Import a model…", cc.import_model_dialog), None,
                         ("save_review", "&Save correction (in review)", lambda: cc.save_correction("in_review")),
                         ("approve", "&Approve and save", lambda: cc.save_correction("approved")),
                         (None, "Re&ject and save…", lambda: cc.save_correction("rejected")),
                         ("next_case", "&Next case (save, open the next worklist row)", lambda: self.worklist.step(1)),
                         ("previous_case", "&Previous case", lambda: self.worklist.step(-1)), None,
                         (None, "Re&train the model on approved corrections", cc.retrain_model),
                         (None, "Retrain the &interactive network on approved corrections", cc.retrain_interactive),
                         (None, "&Join federated round…", self._join_federated_round)],
            "&Window": [("preset_next", "Next preset", lambda: self.window_level.next_preset())],
            "&Help": [("help_shortcuts", "&Shortcuts", lambda: ShortcutsDialog(self).exec()),
                      (None, "Show &log folder", lambda: QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(log_dir())))),
                      (None, "&About", lambda: QtWidgets.QMessageBox.about(
                          self, "Delineate", "Delineate — review and correct AI segmentations.\n"
                                             "Research software: not for clinical use."))]}
        for title, items in menus.items():
            menu = mb.addMenu(title)
            for item in items:
                if item is None:
                    menu.addSeparator()
                elif item == "recent":
                    self.recent_menu = menu.addMenu("Open &recent")
                    self._fill_recent()
                else:
                    self._action(menu, *item)
            if title == "&Window":
                self.window_menu = menu

    # -- layouts --------------------------------------------------------------------------------------
    def set_layout(self, name: str) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; one of {LAYOUTS}")
        for w in list(self.views.values()) + [self.view3d]:
            self.grid.removeWidget(w)
            w.setVisible(False)
        for r in range(3):
            self.grid.setRowStretch(r, 0)
            self.grid.setColumnStretch(r, 0)
        a, c, s, v3 = self.views["axial"], self.views["coronal"], self.views["sagittal"], self.view3d
        focus = self.view3d if self._focused_view == "3d" else self.views[self._focused_view]
        place = {"conventional": [(v3, 0, 0, 1, 3), (a, 1, 0, 1, 1), (c, 1, 1, 1, 1), (s, 1, 2, 1, 1)],  # Slicer's
                 "four_up": [(a, 0, 0, 1, 1), (v3, 0, 1, 1, 1), (c, 1, 0, 1, 1), (s, 1, 1, 1, 1)],
                 "2d": [(a, 0, 0, 1, 1), (c, 0, 1, 1, 1), (s, 0, 2, 1, 1)],
                 "single": [(focus, 0, 0, 1, 1)],
                 "image": [(self.views[self._plane_view()], 0, 0, 1, 1)]}[name]
        for w, r, col, rs, cs in place:
            self.grid.addWidget(w, r, col, rs, cs)
            w.setVisible(True)
            self.grid.setRowStretch(r, 1)
            self.grid.setColumnStretch(col, 1)
        self._layout_name = name

    def _plane_view(self) -> str:
        vol = self.model.volume
        return plane_view(vol.geometry) if vol is not None else "axial"

    def _layout_for(self, volume) -> None:
        """A 2D image or a loop gets one large view (three panes of one-pixel lines helped no one);
        a 3D image after one gets back the layout it had."""
        if volume.is_planar and self._layout_name != "image":
            self._before_image = self._layout_name
            self.set_layout("image")
        elif volume.is_planar:
            self.set_layout("image")  # the plane's view may differ from the last image's
        elif self._layout_name == "image":
            self.set_layout(getattr(self, "_before_image", "conventional"))
        if volume.is_cine:
            self.model.set_slice(self.cine.view, 0)  # a loop starts at its first frame
        self.box3d.setVisible(not volume.is_planar)  # no 3D view to set up for an image plane

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

    def _join_federated_round(self) -> None:
        from gui.federated_dialog import join_federated_round  # flwr and the dialog only when asked for

        join_federated_round(self.shell)

    def reset_views(self) -> None:
        for view in self.views.values():
            view.reset_zoom()
        if self.view3d.available and self.model.volume is not None:
            self.view3d.reset_camera()

    def _tool_changed(self, name: str) -> None:
        if name != "Navigate":
            self.measure.set_mode(None)
        for view in self.views.values():
            view.left_handler = None if name == "Navigate" else self.edit_panel.on_view
            view.setCursor(QtCore.Qt.CursorShape.ArrowCursor if name == "Navigate" else
                           QtCore.Qt.CursorShape.CrossCursor)

    # -- what the session did -------------------------------------------------------------------------
    def _message_changed(self, text: str) -> None:
        if text:
            self._said += 1

    def _open_asked(self) -> None:
        self._asked_open = self._said

    def _image_opened(self, event: ImageOpened) -> None:
        asked = self._said if self._asked_open is None else self._asked_open
        if self._said <= asked:  # no transient message outlives its image; this one's warnings follow
            self.statusBar().clearMessage()
        if not event.preview:
            self._asked_open = None
        if self.view3d.available:
            self.transfer_box.blockSignals(True)
            self.transfer_box.setCurrentText(self.view3d.transfer)
            self.transfer_box.blockSignals(False)
        if not event.preview:  # a first slice shown while a 3D series loads is no 2D image
            self._layout_for(event.volume)
            name = event.volume.description or Path(event.source).name or "store case"
            self.setWindowTitle(f"Delineate — {name}")
            if (series := time_series_of(event.volume)) is not None:
                self.shell.message(f"{series.count} time points ({series.label(0)} shown): the label map and "
                                   "measurements belong to the case and stay on every time point", 15000)
        self.probe.cancel()  # a mouse position held back from the image before means nothing on this one
        self._show_probe(None)

    def _guard_checked(self, event: GuardChecked) -> None:
        run = self.session.run
        self.banner.setText(f"⚠ {run.card.id if run else 'The model'} may not be made for this image: "
                            + "; ".join(event.warnings) + ". Review its output with care.")
        self.banner.setVisible(bool(event.warnings))

    def _store_case_opened(self, image, ai, corrected, case_id: str) -> None:
        try:
            self.session.open_store_case(image, ai, corrected, case_id)
        except DelineateError as exc:  # a stored mask off the image's grid
            show_error(self, "segmentation", exc)
        self.setWindowTitle(f"Delineate — store case {case_id} ({image.geometry.size})")
        self.loaded.emit()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.shell.recent():
            self.recent_menu.addAction(p, lambda p=p: self.opener.open_path(p))
        self.recent_menu.setEnabled(bool(self.shell.recent()))

    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:
        urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if urls:
            ev.acceptProposedAction()
            self.opener.open_path(urls[0])

    def _show_probe(self, display_ijk) -> None:
        if self.model.volume is None or self.model.display is None:
            return
        p = self.model.probe(display_ijk)
        unit = " HU" if self.model.volume.modality == "CT" else ""
        vol = self.model.volume
        parts = [(f"pixel {tuple(p['index'][:2])}" + (f" frame {p['index'][2] + 1}" if vol.is_cine else "")
                  if vol.is_planar else f"voxel {tuple(p['index'])}") if p["index"] is not None
                 else "outside the image"]
        if vol.orientation_known:  # else the position is only the placeholder grid's
            parts.append("LPS ({:.1f}, {:.1f}, {:.1f}) mm".format(*p["world"]))
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
            ratio = image.width() / max(1, self.width())
            top_left = self.view3d.mapTo(self, QtCore.QPoint(0, 0))
            target = QtCore.QRect(int(top_left.x() * ratio), int(top_left.y() * ratio),
                                  int(self.view3d.width() * ratio), int(self.view3d.height() * ratio))
            painter = QtGui.QPainter(image)
            painter.drawImage(target, self.view3d.screenshot())
            painter.end()
        return image

    def save_screenshot(self, path: str, whole_window: bool = True, view: Optional[str] = None) -> None:
        if not self.screenshot(whole_window, view).save(path, "PNG"):
            raise DelineateError(f"{path}: could not write the PNG")

    def screenshot_dialog(self, whole_window: bool) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save screenshot", self.shell.last_dir(), "PNG (*.png)")
        if path:
            try:
                self.save_screenshot(path if path.lower().endswith(".png") else path + ".png", whole_window)
            except DelineateError as exc:
                show_error(self, path, exc)

    def closeEvent(self, ev) -> None:
        # unsaved corrections are saved (then it closes), discarded or kept open, as the user says;
        # the crash-recovery file is for crashes, not for a close nobody was asked about
        if self.cases.ask_unsaved("closing Delineate", self.close, root=self.worklist.root) in (SAVE, CANCEL):
            ev.ignore()
            return
        self.tasks.cancel()
        self.tasks.wait()
        self.view3d.finalize()
        super().closeEvent(ev)


class _PanelFit(QtCore.QObject):
    """Widens the dock when the panel's content needs more room: an image in other units relabels
    it ("Remove islands < mm²" on a 2D image), and a horizontal scroll bar hid part of the Edit box."""

    def __init__(self, dock, scroll, panel) -> None:
        super().__init__(dock)
        self.dock, self.scroll, self.panel = dock, scroll, panel
        panel.installEventFilter(self)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QtCore.QEvent.Type.LayoutRequest:
            need = _panel_width(self.scroll, self.panel)
            if need > self.dock.minimumWidth():
                self.dock.setMinimumWidth(need)
        return False


def _panel_width(scroll: QtWidgets.QScrollArea, panel: QtWidgets.QWidget) -> int:
    """The side panel's width: its widest page without a horizontal scroll bar (which hid part of
    the Edit box), at least 330 and at most about half the screen (QT_SCALE_FACTOR=2 on a
    1600-pixel screen leaves 800 logical pixels, and the views need theirs)."""
    screen = QtGui.QGuiApplication.primaryScreen()
    free = screen.availableGeometry().width() if screen is not None else 1400
    need = panel.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 2 * scroll.frameWidth() + 4
    return max(330, min(need, int(free * 0.52)))


def _stack(parts, stretch: bool = False) -> QtWidgets.QWidget:
    """A tab page: widgets one above the other, each in a titled box when it has a title."""
    page = QtWidgets.QWidget()
    lay = QtWidgets.QVBoxLayout(page)
    lay.setContentsMargins(2, 4, 2, 4)
    for n, (title, widget) in enumerate(parts):
        if title is None:
            lay.addWidget(widget, 1)
            continue
        box = QtWidgets.QGroupBox(title)
        inner = QtWidgets.QVBoxLayout(box)
        inner.setContentsMargins(4, 4, 4, 4)
        inner.addWidget(widget)
        lay.addWidget(box)
    if stretch:
        lay.addStretch(1)
    return page
