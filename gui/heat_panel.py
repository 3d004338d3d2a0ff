"""Heat-map layers (saliency, uncertainty, probability maps): colour map, opacity, threshold."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from core.viewer_model import ViewerModel

COLORMAPS = ("inferno", "viridis", "magma", "plasma", "CET-L3", "CET-R4")


class HeatPanel(QtWidgets.QWidget):
    def __init__(self, model: ViewerModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.layer = QtWidgets.QComboBox()
        self.colormap = QtWidgets.QComboBox()
        self.colormap.addItems(COLORMAPS)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.threshold = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 255)
        self.threshold_text = QtWidgets.QLabel()
        self.remove = QtWidgets.QPushButton("Remove")
        form = QtWidgets.QFormLayout(self)
        form.addRow("Layer", self.layer)
        form.addRow("Colours", self.colormap)
        form.addRow("Opacity", self.opacity)
        form.addRow("Threshold", self.threshold)
        form.addRow("", self.threshold_text)
        form.addRow("", self.remove)
        self._filling = False
        self.layer.currentIndexChanged.connect(lambda _i: self.refresh())
        self.colormap.currentTextChanged.connect(self._changed)
        self.opacity.valueChanged.connect(self._changed)
        self.threshold.valueChanged.connect(self._changed)
        self.remove.clicked.connect(self._remove)
        model.subscribe("heatmaps", self._layers_changed)
        model.subscribe("image", self._layers_changed)
        self._layers_changed()

    def current(self):
        i = self.layer.currentIndex()
        return self.model.heatmaps[i] if 0 <= i < len(self.model.heatmaps) else None

    def _layers_changed(self) -> None:
        names = [h.name for h in self.model.heatmaps]
        if [self.layer.itemText(i) for i in range(self.layer.count())] != names:
            self._filling = True
            keep = self.layer.currentText()
            self.layer.clear()
            self.layer.addItems(names)
            if keep in names:
                self.layer.setCurrentIndex(names.index(keep))
            elif names:
                self.layer.setCurrentIndex(len(names) - 1)
            self._filling = False
        self.setEnabled(bool(names))
        self.refresh()

    def refresh(self) -> None:
        heat = self.current()
        if heat is None:
            return
        self._filling = True
        if self.colormap.findText(heat.colormap) < 0:
            self.colormap.addItem(heat.colormap)
        self.colormap.setCurrentText(heat.colormap)
        self.opacity.setValue(int(round(heat.opacity * 100)))
        self.threshold.setValue(int(round((heat.threshold - heat.vmin) * 255 / (heat.vmax - heat.vmin))))
        self.threshold_text.setText(f"shown from {heat.threshold:.4g}  (range {heat.vmin:.4g} … {heat.vmax:.4g})")
        self._filling = False

    def _changed(self, *_args) -> None:
        heat = self.current()
        if heat is None or self._filling:
            return
        heat.colormap = self.colormap.currentText()
        heat.opacity = self.opacity.value() / 100.0
        heat.threshold = heat.value_of(self.threshold.value())
        self.threshold_text.setText(f"shown from {heat.threshold:.4g}  (range {heat.vmin:.4g} … {heat.vmax:.4g})")
        self.model.heatmap_changed()

    def _remove(self) -> None:
        heat = self.current()
        if heat is not None:
            self.model.remove_heatmap(heat.name)
