"""Explain: saliency for a label in a region (default: the segment under the crosshair), and
uncertainty with a walk through the most doubtful regions. Results are heat-map layers."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from core.overlay import HeatMap
from core.viewer_model import ViewerModel
from inference.xai_text import DESCRIPTIONS, LEGENDS, METHODS

NAMES = {"gradcam": "Grad-CAM", "occlusion": "Occlusion", "ig": "Integrated gradients", "uncertainty": "Uncertainty"}


class ExplainPanel(QtWidgets.QWidget):
    def __init__(self, model: ViewerModel, window, parent=None) -> None:
        super().__init__(parent)
        self.model, self.window = model, window
        self.method = QtWidgets.QComboBox()
        for m in METHODS:
            self.method.addItem(NAMES[m], m)
            self.method.setItemData(self.method.count() - 1, DESCRIPTIONS[m], QtCore.Qt.ItemDataRole.ToolTipRole)
        self.method.currentIndexChanged.connect(lambda _i: self.method.setToolTip(DESCRIPTIONS[self.current_method()]))
        self.method.setToolTip(DESCRIPTIONS[METHODS[0]])
        self.label = QtWidgets.QComboBox()
        self.whole = QtWidgets.QCheckBox("Whole label (else: the segment piece under the crosshair)")
        self.run = QtWidgets.QPushButton("Explain")
        self.run.clicked.connect(self.start)
        self.next = QtWidgets.QPushButton("Next most uncertain region")
        self.next.setEnabled(False)
        self.next.clicked.connect(self.next_region)
        self.info = QtWidgets.QLabel()
        self.info.setWordWrap(True)
        form = QtWidgets.QFormLayout(self)
        form.addRow("Method", self.method)
        form.addRow("Label", self.label)
        form.addRow("", self.whole)
        form.addRow("", self.run)
        form.addRow("", self.next)
        form.addRow(self.info)
        self.regions: list[dict] = []
        self._region = -1
        model.subscribe("segments", self._labels_changed)

    def current_method(self) -> str:
        return self.method.currentData()

    def _labels_changed(self) -> None:
        lm = self.model.labelmap
        keep = self.label.currentData()
        self.label.clear()
        for lab in (lm.table if lm is not None else []):
            self.label.addItem(f"{lab.value} {lab.name}", lab.value)
        if keep is not None and self.label.findData(keep) >= 0:
            self.label.setCurrentIndex(self.label.findData(keep))

    def roi(self, value: int):
        """The connected piece of ``value`` under the crosshair, else every voxel of it."""
        from scipy import ndimage

        lm = self.model.labelmap
        mask = lm.array == value
        p = self.model.probe()
        if not self.whole.isChecked() and p["index"] is not None:
            i, j, k = p["index"]
            if mask[k, j, i]:
                comp, _n = ndimage.label(mask)
                return comp == comp[k, j, i]
        return mask

    def start(self) -> None:
        from inference.xai import explain, uncertainty

        seg = getattr(self.window, "segmentation", None)
        vol = self.model.volume
        if seg is None or vol is None or seg.labels.geometry is not vol.geometry:
            self.info.setText("Run a model first (Segment → Run the default model): explanations are of a model.")
            return
        method = self.current_method()
        card = seg.card
        if method == "uncertainty":
            fn = lambda p, c, _part: uncertainty(vol, card, p, c, first=seg.probabilities)  # noqa: E731
        else:
            value = self.label.currentData()
            if value is None:
                return
            roi = self.roi(value)
            fn = lambda p, c, _part: explain(vol, card, value, method, roi=roi, progress=p, cancel=c)  # noqa: E731
        self.window.tasks.start(f"{NAMES[method]} of {card.id}", fn, self._done,
                                lambda exc: self.window._failed(card.id, exc))

    def _done(self, result) -> None:
        name = NAMES[result.method] + ("" if result.method == "uncertainty" else f" ({self._name(result.label)})")
        heat = HeatMap.from_values(name, result.values, self.model.volume.geometry, vmin=0.0, vmax=1.0,
                                   colormap="viridis" if result.method == "uncertainty" else "inferno",
                                   threshold=0.1 if result.method != "uncertainty" else 0.3,
                                   meaning=LEGENDS[result.method])
        self.model.add_heatmap(heat)
        if result.method == "uncertainty":
            from inference.xai import uncertain_regions

            self.window.case_uncertainty = result.extra["case"]  # saved with the correction, shown in the worklist

            self.regions = uncertain_regions(result.values, 0.5, min_voxels=27 if result.values.shape[0] > 1 else 9,
                                             spacing_xyz=self.model.volume.geometry.spacing)
            self._region = -1
            self.next.setEnabled(bool(self.regions))
            scores = ", ".join(f"{self._name(v)} {s:.2f}" for v, s in result.extra["per_segment"].items())
            self.info.setText(f"Case uncertainty {result.extra['case']:.3f} (mean normalised entropy in the "
                              f"segments); per segment: {scores or '-'}; {len(self.regions)} regions above 0.5.")
        else:
            self.info.setText(f"{name}: {result.extra.get('windows', 1)} window(s) explained.")
        self.window.loaded.emit()

    def _name(self, value: int) -> str:
        lab = self.model.labelmap.table.get(value) if self.model.labelmap is not None else None
        return lab.name if lab is not None else str(value)

    def next_region(self) -> None:
        if not self.regions:
            return
        self._region = (self._region + 1) % len(self.regions)
        r = self.regions[self._region]
        z, y, x = r["centre_zyx"]
        self.model.set_cursor_world(self.model.volume.geometry.index_to_world([x, y, z]))
        self.info.setText(f"Region {r['rank']}/{len(self.regions)} (ranked by volume x mean uncertainty): "
                          f"{r['volume_ml']:.2f} mL, mean uncertainty {r['mean']:.2f}, score {r['score']:.3g}")
