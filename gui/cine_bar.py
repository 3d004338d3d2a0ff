"""The cine bar under a multi-frame image (an ultrasound loop, a dynamic series): frame slider,
play/pause, step, loop and frame rate (the file's, or chosen). Playing a loop moves the viewer
model's slice of the plane's view, so the image, the segments and every overlay follow the frame.
Playing a 3D series over time (core.time_series) swaps the time point's voxels under the views;
slices, crosshair, label map and measurements stay (they belong to the case)."""
from __future__ import annotations

from typing import Optional

from PySide6 import QtCore, QtGui, QtWidgets

from core.cine import MAX_FPS, MIN_FPS, Cine
from core.errors import DelineateError
from core.planar import plane_view
from core.time_series import TimeSeries, show_time_point, time_series_of
from core.viewer_model import ViewerModel
from gui.shortcuts import key_for


class CineBar(QtWidgets.QWidget):
    frame_shown = QtCore.Signal(int)  # each frame the bar moved to (0-based)
    failed = QtCore.Signal(str)  # a time point could not be read (the file moved, was cut short)
    said = QtCore.Signal(str)  # a status line (heat maps kept with their time point)

    def __init__(self, model: ViewerModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.cine: Optional[Cine] = None
        self.series: Optional[TimeSeries] = None  # a 3D series over time, else frames of a plane
        self.view = "axial"
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.tick)
        style = self.style()
        icon = QtWidgets.QStyle.StandardPixmap

        def button(pix, tip, slot):
            b = QtWidgets.QToolButton()
            b.setIcon(style.standardIcon(pix))
            b.setToolTip(tip)
            b.setAutoRaise(True)
            b.clicked.connect(slot)
            return b

        self.back = button(icon.SP_MediaSeekBackward, "Previous frame", lambda: self.step(-1))
        self.play_button = button(icon.SP_MediaPlay, "Play / pause the loop", self.toggle)
        self.forward = button(icon.SP_MediaSeekForward, "Next frame", lambda: self.step(1))
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self._slider_moved)
        self.frame_label = QtWidgets.QLabel()
        self.frame_label.setMinimumWidth(QtWidgets.QLabel().fontMetrics().horizontalAdvance("t 0000/0000  0000 s"))
        self.loop = QtWidgets.QCheckBox("Loop")
        self.loop.setChecked(True)
        self.loop.toggled.connect(self._loop_toggled)
        self.fps = QtWidgets.QDoubleSpinBox()
        self.fps.setRange(MIN_FPS, MAX_FPS)
        self.fps.setDecimals(1)
        self.fps.setSuffix(" fps")
        self.fps.valueChanged.connect(self._fps_changed)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        for w in (self.back, self.play_button, self.forward):
            lay.addWidget(w)
        lay.addWidget(self.slider, 1)
        for w in (self.frame_label, self.loop, self.fps):
            lay.addWidget(w)
        # keys of the whole window, live while the bar shows (a shortcut of a hidden widget is off):
        # Up/Down alone step slices in a slice view, with Ctrl they step time
        for aid, slot in (("time_next", lambda: self.step(1)), ("time_previous", lambda: self.step(-1)),
                          ("cine_play", self._space)):
            key = QtGui.QShortcut(QtGui.QKeySequence(key_for(aid)), self)
            key.setContext(QtCore.Qt.ShortcutContext.WindowShortcut)
            key.activated.connect(slot)
        self.said.connect(self._status)
        self.setVisible(False)
        model.subscribe("image", self._on_image)
        model.subscribe("cursor", self._on_cursor)
        model.subscribe("time", self._on_cursor)

    # -- state ------------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    @property
    def frame(self) -> int:
        return self.series.shown if self.series is not None else self.model.slice_index(self.view)

    def _go(self, k: int) -> None:
        if self.series is None:
            self.model.set_slice(self.view, k)
            return
        left, maps = self.series.shown, len(self.model.heatmaps)
        try:
            show_time_point(self.model, k)
        except DelineateError as exc:  # the case stays open on the time point it shows
            self.pause()
            self.failed.emit(str(exc))
            return
        if maps and not self.model.heatmaps:  # core.time_series keeps them with their time point
            self.said.emit(f"{maps} heat map(s) made on {self.series.label(left).split('  ')[0]} hidden: they "
                           "describe that time point's voxels; stepping back there shows them again")
        elif self.model.heatmaps and not maps:
            self.said.emit(f"heat maps made on {self.series.label(k).split('  ')[0]} shown again")

    def _on_image(self) -> None:
        self.pause()
        vol = self.model.volume
        self.series = time_series_of(vol) if vol is not None and not vol.is_planar else None
        if vol is None or self.model.display is None or (not vol.is_planar and self.series is None):
            self.cine = None
            self.setVisible(False)
            return
        if self.series is not None:
            self.cine = Cine.for_time_series(self.series)
            n = self.series.count
        else:
            self.view = plane_view(vol.geometry)
            n = self.model.display.n_slices(self.view)
            self.cine = Cine.for_volume(vol)
            self.cine.frames = n
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(n - 1, 0))
        self.slider.blockSignals(False)
        self.fps.blockSignals(True)
        self.fps.setValue(self.cine.fps)
        self.fps.blockSignals(False)
        self.fps.setToolTip(f"Frame rate; the file says {self.cine.file_fps:.3g} fps" if self.cine.file_fps
                            else "Frame rate (the file states none)")
        self.cine.loop = self.loop.isChecked()
        self.setVisible(n > 1)
        self._on_cursor()

    def _on_cursor(self) -> None:
        if self.cine is None:
            return
        k = self.frame
        self.slider.blockSignals(True)
        self.slider.setValue(k)
        self.slider.blockSignals(False)
        self.frame_label.setText(self.series.label() if self.series is not None
                                 else f"Frame {k + 1}/{self.cine.frames}")

    # -- controls ---------------------------------------------------------------------------------
    def play(self) -> None:
        if self.cine is None or self.cine.frames < 2:
            return
        if not self.cine.loop and self.frame == self.cine.frames - 1:
            self._go(0)  # play again from the start
        self.timer.start(self.cine.interval_ms)
        self.play_button.setIcon(self.style().standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaPause))

    def pause(self) -> None:
        self.timer.stop()
        self.play_button.setIcon(self.style().standardIcon(QtWidgets.QStyle.StandardPixmap.SP_MediaPlay))

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def _space(self) -> None:
        """Space plays and pauses, except on a button or check box reached with Tab, which Space
        presses as everywhere in Qt (the window's shortcut took the key from it). A button that
        only kept the focus from a mouse click is not pressed again: Space is the cine's key."""
        focus = QtWidgets.QApplication.focusWidget()
        tabbed = focus is not None and focus.window().testAttribute(QtCore.Qt.WidgetAttribute.WA_KeyboardFocusChange)
        if isinstance(focus, QtWidgets.QAbstractButton) and tabbed and focus.isVisible() and focus.isEnabled():
            focus.animateClick()
        else:
            self.toggle()

    def step(self, steps: int) -> None:
        """Step by hand: pauses the loop first; past either end it wraps round while Loop is on
        (as playing does), else stays on the end frame."""
        if self.cine is None:
            return
        self.pause()
        k = self.cine.step(self.frame, steps)
        self._go(min(max(self.frame + steps, 0), self.cine.frames - 1) if k is None else k)
        self.frame_shown.emit(self.frame)

    def tick(self) -> None:
        if self.cine is None:
            self.pause()
            return
        nxt = self.cine.step(self.frame)
        if nxt is None:
            self.pause()
            return
        self._go(nxt)
        self.frame_shown.emit(nxt)

    def _slider_moved(self, k: int) -> None:
        if self.cine is not None:
            self._go(k)

    def _status(self, text: str) -> None:
        window = self.window()
        if isinstance(window, QtWidgets.QMainWindow):
            window.statusBar().showMessage(text, 10000)

    def _loop_toggled(self, on: bool) -> None:
        if self.cine is not None:
            self.cine.loop = on

    def _fps_changed(self, fps: float) -> None:
        if self.cine is not None:
            self.cine.set_fps(fps)
            if self.playing:
                self.timer.setInterval(self.cine.interval_ms)
