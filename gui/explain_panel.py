"""Explain: saliency for a label in a region (default: the segment under the crosshair), and
uncertainty with a walk through the most doubtful regions. The work is app.actions.explaining;
results are heat-map layers."""
from __future__ import annotations

import dataclasses

from PySide6 import QtCore, QtWidgets

from app.actions.explaining import NAMES, describe_region, region, region_centre_world
from app.session import CaseSession, ImageOpened
from core.time_series import add_heatmap_made_at, shown_time_point
from inference.xai_text import DESCRIPTIONS, METHODS


class ExplainPanel(QtWidgets.QWidget):
    def __init__(self, session: CaseSession, shell, parent=None) -> None:
        super().__init__(parent)
        self.session, self.model, self.shell = session, session.viewer, shell
        self.method = QtWidgets.QComboBox()
        for m in METHODS:
            self.method.addItem(NAMES[m], m)
            self.method.setItemData(self.method.count() - 1, DESCRIPTIONS[m], QtCore.Qt.ItemDataRole.ToolTipRole)
        self.method.currentIndexChanged.connect(lambda _i: self.method.setToolTip(DESCRIPTIONS[self.current_method()]))
        self.method.setToolTip(DESCRIPTIONS[METHODS[0]])
        self.label = QtWidgets.QComboBox()
        self.whole = QtWidgets.QCheckBox("Whole label")  # short: the side panel never scrolls sideways
        self.whole.setToolTip("Explain the whole label; unchecked, the segment piece under the crosshair")
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
        self.nav = None  # gui.region_nav.RegionNav once attached to the slice views
        self.model.subscribe("segments", self._labels_changed)
        session.subscribe(ImageOpened, lambda _e: self._show_regions([]))

    def attach(self, views: dict) -> None:
        """Outline and zoom to the walked regions on these slice views (name -> SliceView)."""
        from gui.region_nav import RegionNav

        self.nav = RegionNav(views)

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

    def start(self) -> None:
        from app.actions.explaining import explain

        s, method = self.session, self.current_method()
        if s.run is None:
            self.info.setText("Run a model first (Segment → Run the default model): explanations are of a model.")
            return
        value = self.label.currentData()
        if method != "uncertainty" and value is None:
            return
        roi = None if method == "uncertainty" else region(s.labelmap, value, self.model.probe()["index"],
                                                          self.whole.isChecked())
        # the time point on screen, held as it is: stepping the cine bar swaps the live volume's voxels
        live, vol, run, k = s.volume, dataclasses.replace(s.volume), s.run, shown_time_point(s.volume)
        names = {lab.value: lab.name for lab in s.labelmap.table} if s.labelmap is not None else {}
        self.shell.run(f"{NAMES[method]} of {run.card.id}",
                       lambda p, c, _part: explain(vol, run, method, value, roi, lambda v: names.get(v, str(v)), p, c),
                       lambda done: self._done(done, k) if live is s.volume else None, run.card.id)

    def _done(self, done, k=None) -> None:
        if not add_heatmap_made_at(self.model, done.heatmap, k):
            self.info.setText(f"{done.summary} Made on time point {k + 1}: shown when you step back to it.")
            return
        self.info.setText(done.summary)
        if done.explanation.method == "uncertainty":
            self.session.set_uncertainty(done.explanation.extra["case"])  # saved where no model run gives one
            self._show_regions(done.regions)

    def _show_regions(self, regions: list) -> None:
        self.regions, self._region = regions, -1
        self.next.setEnabled(bool(regions))
        if self.nav is not None:
            self.nav.clear()

    def _name(self, value: int) -> str:
        lab = self.model.labelmap.table.get(value) if self.model.labelmap is not None else None
        return lab.name if lab is not None else str(value)

    def next_region(self) -> None:
        if self.regions:
            self._region = (self._region + 1) % len(self.regions)
            r = self.regions[self._region]
            self.model.set_cursor_world(region_centre_world(self.session.volume, r))
            if self.nav is not None:
                self.nav.show(r, len(self.regions))
            self.info.setText(describe_region(r, len(self.regions)))
