"""Application start-up. The full MPR viewer arrives with the viewer issue; until then one
slice view with a slider shows the loaded volume so the open path is exercised end to end."""
from __future__ import annotations

import sys
from typing import Optional

import numpy as np


def _slice_for_display(volume, k: int) -> np.ndarray:
    """[y, x] slice as pyqtgraph wants it (x first, row-major display)."""
    sl = volume.array[k]
    return np.swapaxes(sl, 0, 1)


def build_window(volume):
    import pyqtgraph as pg
    from PySide6 import QtCore, QtWidgets

    win = QtWidgets.QMainWindow()
    win.setWindowTitle(f"Delineate — {volume.description or volume.source}")
    central = QtWidgets.QWidget()
    layout = QtWidgets.QVBoxLayout(central)
    view = pg.GraphicsLayoutWidget()
    plot = view.addViewBox(lockAspect=True, invertY=True)
    img = pg.ImageItem(axisOrder="col-major")
    plot.addItem(img)
    sx, sy = volume.spacing[0], volume.spacing[1]
    w = volume.default_window()
    slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
    slider.setRange(0, volume.geometry.size[2] - 1)
    label = QtWidgets.QLabel()

    def show(k: int) -> None:
        img.setImage(_slice_for_display(volume, k), levels=None if volume.is_color else
                     (w.center - w.width / 2, w.center + w.width / 2))
        img.setRect(0, 0, volume.geometry.size[0] * sx, volume.geometry.size[1] * sy)
        label.setText(f"slice {k + 1}/{volume.geometry.size[2]}   {volume.modality}   "
                      f"spacing {', '.join(f'{v:.3g}' for v in volume.spacing)} mm   "
                      f"window C{w.center:.0f}/W{w.width:.0f}")

    slider.valueChanged.connect(show)
    slider.setValue(volume.geometry.size[2] // 2)
    show(slider.value())
    layout.addWidget(view, 1)
    layout.addWidget(slider)
    layout.addWidget(label)
    win.setCentralWidget(central)
    win.resize(1000, 800)
    win._keep = (view, img, slider, label)
    return win


def run(path: Optional[str] = None) -> int:
    from PySide6 import QtWidgets

    from core.errors import DelineateError
    from formats import samples
    from formats.io import read_image

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("Delineate")
    try:
        volume = read_image(path or samples.path())
    except DelineateError as exc:
        QtWidgets.QMessageBox.critical(None, "Delineate — cannot open", str(exc))
        return 2
    win = build_window(volume)
    win.show()
    return app.exec()
