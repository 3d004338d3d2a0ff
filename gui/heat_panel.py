"""Heat-map layers (saliency, uncertainty, probability maps): which one is shown, its colour bar and
legend, colour map, opacity, threshold. The panel always acts on the model's active layer, which is
the newest one until the user picks another."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from core.viewer_model import ViewerModel
from gui.colorbar_item import colorbar_image

COLORMAPS = ("inferno", "viridis", "magma", "plasma", "CET-L3", "CET-R4")


class HeatPanel(QtWidgets.QWidget):
    def __init__(self, model: ViewerModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.layer = QtWidgets.QComboBox()
        self.one = QtWidgets.QCheckBox("One map at a time")
        self.one.setChecked(model.one_heatmap)
        self.one.setToolTip("Stacked maps hide the anatomy and each other; untick to overlay them all.")
        self.colorbar = QtWidgets.QLabel()
        self.colorbar.setScaledContents(True)
        self.colorbar.setMinimumHeight(14)
        self.scale = QtWidgets.QLabel()
        self.legend = QtWidgets.QLabel()
        self.legend.setWordWrap(True)
        self.colormap = QtWidgets.QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.threshold = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 255)
        self.threshold_text = QtWidgets.QLabel()
        self.remove = QtWidgets.QPushButton("Remove")
        self.in_3d = QtWidgets.QCheckBox("Show in 3D")  # short: the side panel never scrolls sideways
        self.in_3d.setToolTip("Iso-surfaces at 50 % and 80 % of the map's range in the 3D view")
        self.in_3d.setChecked(True)
        self.in_3d.setEnabled(False)  # until a 3D view is attached
        self.map3d = None
        form = QtWidgets.QFormLayout(self)
        form.addRow("Layer", self.layer)
        form.addRow("", self.one)
        form.addRow("Scale", self.colorbar)
        form.addRow("", self.scale)
        form.addRow(self.legend)
        form.addRow("Colours", self.colormap)
        form.addRow("Opacity", self.opacity)
        form.addRow("Threshold", self.threshold)
        form.addRow("", self.threshold_text)
        form.addRow("", self.in_3d)
        form.addRow("", self.remove)
        self._filling = False
        self.layer.currentIndexChanged.connect(self._picked)
        self.one.toggled.connect(model.set_one_heatmap)
        self.colormap.currentTextChanged.connect(self._changed)
        self.opacity.valueChanged.connect(self._changed)
        self.threshold.valueChanged.connect(self._changed)
        self.remove.clicked.connect(self._remove)
        model.subscribe("heatmaps", self._layers_changed)
        model.subscribe("image", self._layers_changed)
        self._layers_changed()

    def attach_3d(self, view3d) -> None:
        """Show the active map in ``view3d`` too (gui.map3d), switched by the "Show in 3D" box."""
        if not view3d.available:
            return
        from gui.map3d import Map3D

        self.map3d = Map3D(view3d)
        self.in_3d.setEnabled(True)
        self.in_3d.toggled.connect(self.map3d.set_enabled)

    def current(self):
        return self.model.active_heatmap()

    def _picked(self, index: int) -> None:
        if not self._filling and 0 <= index < len(self.model.heatmaps):
            self.model.set_active_heatmap(self.model.heatmaps[index].name)

    def _layers_changed(self) -> None:
        names = [h.name for h in self.model.heatmaps]
        self._filling = True
        if [self.layer.itemText(i) for i in range(self.layer.count())] != names:
            self.layer.clear()
            self.layer.addItems(names)
        if self.model.active_heat in names:
            self.layer.setCurrentIndex(names.index(self.model.active_heat))
        self.one.setChecked(self.model.one_heatmap)
        self._filling = False
        self.setEnabled(bool(names))
        self.refresh()

    def refresh(self) -> None:
        heat = self.current()
        if heat is None:
            self.colorbar.clear()
            self.scale.clear()
            self.legend.clear()
            return
        self._filling = True
        if self.colormap.findText(heat.colormap) < 0:
            self.colormap.addItem(heat.colormap)
        self.colormap.setCurrentText(heat.colormap)
        self.opacity.setValue(int(round(heat.opacity * 100)))
        self.threshold.setValue(int(round((heat.threshold - heat.vmin) * 255 / (heat.vmax - heat.vmin))))
        self._filling = False
        self._describe(heat)

    def _describe(self, heat) -> None:
        self.colorbar.setPixmap(QtGui.QPixmap.fromImage(colorbar_image(heat)))
        self.scale.setText(f"{heat.vmin:.3g}  …  {heat.vmax:.3g}   (shown from {heat.threshold:.3g})")
        self.legend.setText(f"<b>{heat.name}</b>: {heat.meaning}" if heat.meaning else f"<b>{heat.name}</b>")
        self.threshold_text.setText(f"shown from {heat.threshold:.4g}  (range {heat.vmin:.4g} … {heat.vmax:.4g})")

    def _changed(self, *_args) -> None:
        heat = self.current()
        if heat is None or self._filling:
            return
        heat.colormap = self.colormap.currentText()
        heat.opacity = self.opacity.value() / 100.0
        heat.threshold = heat.value_of(self.threshold.value())
        self._describe(heat)
        self.model.heatmap_changed()

    def _remove(self) -> None:
        heat = self.current()
        if heat is not None:
            self.model.remove_heatmap(heat.name)
