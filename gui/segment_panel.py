"""Segment list: visibility (slices and 3D), 3D surface, colour, name, size (volume in ml; on a 2D
image or cine loop the area on the shown frame, in mm²/cm² or pixels as core.planar says); opacity
and outline for the slice overlay."""
from __future__ import annotations

from dataclasses import replace

from PySide6 import QtCore, QtGui, QtWidgets

from app.session import CaseSession
from core.planar import segment_sizes, size_heading

COLUMNS = ("Show", "3D", "Colour", "Name", "Volume (ml)", "Lock")


class SegmentPanel(QtWidgets.QWidget):
    def __init__(self, session: CaseSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.model = model = session.viewer
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setSectionResizeMode(3, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header = self.table.horizontalHeader()
        for c in (0, 1, 2, 4, 5):
            header.setSectionResizeMode(c, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.itemChanged.connect(self._item_changed)
        self.table.cellDoubleClicked.connect(self._cell_double_clicked)
        # eight rows show without scrolling (four did): compact rows, the height they need
        rows = self.table.verticalHeader()
        rows.setDefaultSectionSize(max(22, self.fontMetrics().height() + 8))
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height()
                                    + 8 * rows.defaultSectionSize() + 2 * self.table.frameWidth() + 2)
        self.opacity = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(model.opacity * 100))
        self.opacity.valueChanged.connect(lambda v: model.set_opacity(v / 100.0))
        self.outline = QtWidgets.QCheckBox("Outline only")
        self.outline.toggled.connect(model.set_outline)
        form = QtWidgets.QFormLayout()
        form.addRow("Opacity", self.opacity)
        form.addRow("", self.outline)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addLayout(form)
        self._filling = False
        model.subscribe("segments", self.refresh)
        self._volume_timer = QtCore.QTimer(self)  # volumes are a pass over the whole map: once edits pause
        self._volume_timer.setSingleShot(True)
        self._volume_timer.setInterval(300)
        self._volume_timer.timeout.connect(self.refresh_volumes)
        model.subscribe("labels", self._volume_timer.start)
        model.subscribe("image", self._on_image)
        self._frame = -1
        model.subscribe("cursor", self._on_cursor)  # a loop's areas are the shown frame's

    def _frame_shown(self) -> int:
        """The shown frame of a planar image (source index k), else 0."""
        m = self.model
        if m.volume is None or m.display is None or not m.volume.is_cine:
            return 0
        return int(round(m.volume.geometry.world_to_index(m.cursor_world())[2]))

    def _on_image(self) -> None:
        self._frame = self._frame_shown()
        self._set_heading()

    def _set_heading(self) -> None:
        vol = self.model.volume
        item = QtWidgets.QTableWidgetItem(size_heading(vol, self._frame))
        if vol is not None and vol.is_cine:
            item.setToolTip(f"Each segment's area on the frame shown (frame {self._frame + 1} of "
                            f"{vol.geometry.size[2]}), not over the loop; the statistics and the report "
                            "give each segment's largest frame")
        self.table.setHorizontalHeaderItem(4, item)

    def _on_cursor(self) -> None:
        k = self._frame_shown()
        if k != self._frame:
            self._frame = k
            self._set_heading()
            self.refresh_volumes()

    def values(self) -> list[int]:
        lm = self.model.labelmap
        return [lab.value for lab in lm.table if lab.value > 0] if lm is not None else []

    def refresh(self) -> None:
        lm = self.model.labelmap
        self._filling = True
        try:
            values = self.values()
            if [self.table.item(r, 3).data(QtCore.Qt.ItemDataRole.UserRole)
                    for r in range(self.table.rowCount())] != values:
                self.table.setRowCount(len(values))
            for row, v in enumerate(values):
                lab = lm.table.get(v)
                show = QtWidgets.QTableWidgetItem()
                show.setFlags(QtCore.Qt.ItemFlag.ItemIsUserCheckable | QtCore.Qt.ItemFlag.ItemIsEnabled)
                show.setCheckState(QtCore.Qt.CheckState.Unchecked if v in self.model.hidden
                                   else QtCore.Qt.CheckState.Checked)
                surf = QtWidgets.QTableWidgetItem()
                surf.setFlags(show.flags())
                surf.setCheckState(QtCore.Qt.CheckState.Unchecked if v in self.session.hidden_surfaces
                                   else QtCore.Qt.CheckState.Checked)
                colour = QtWidgets.QTableWidgetItem()
                colour.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
                colour.setBackground(QtGui.QColor(*lab.color))
                colour.setToolTip("Double-click to change the colour")
                name = QtWidgets.QTableWidgetItem(lab.name)
                name.setData(QtCore.Qt.ItemDataRole.UserRole, v)
                name.setToolTip(f"label value {v}")
                lock = QtWidgets.QTableWidgetItem()
                lock.setFlags(show.flags())
                lock.setCheckState(QtCore.Qt.CheckState.Checked if v in self.session.locked
                                   else QtCore.Qt.CheckState.Unchecked)
                lock.setToolTip("Locked: paint, erase and other tools do not change this segment")
                for col, item in enumerate((show, surf, colour, name)):
                    self.table.setItem(row, col, item)
                self.table.setItem(row, 5, lock)
            self.refresh_volumes()
        finally:
            self._filling = False

    def refresh_volumes(self) -> None:
        lm = self.model.labelmap
        if lm is None:
            return
        values = self.values()
        vol = self.model.volume
        if vol is None or (vol.spacing_known and not vol.is_planar):
            sizes = {v: f"{ml:.2f}" for v, ml in lm.volumes_ml().items()}
        else:
            sizes = segment_sizes(vol, lm.array, values, self._frame_shown())
        was, self._filling = self._filling, True
        for row, v in enumerate(values):
            item = QtWidgets.QTableWidgetItem(sizes.get(v, ""))
            item.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 4, item)
        self._filling = was

    def toggle_all(self) -> None:
        """Show every segment if any is hidden, else hide them all."""
        values = self.values()
        show = any(v in self.model.hidden for v in values)
        for v in values:
            self.model.set_visible(v, show)

    def row_of(self, value: int) -> int:
        return self.values().index(value)

    def _item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        if self._filling:
            return
        v = self.values()[item.row()]
        checked = item.checkState() == QtCore.Qt.CheckState.Checked
        if item.column() == 0:
            self.model.set_visible(v, checked)
        elif item.column() == 1:
            self.session.set_surface_visible(v, checked)
        elif item.column() == 5:
            self.session.set_locked(v, checked)  # editing tools leave these segments' voxels alone
        elif item.column() == 3:
            lm = self.model.labelmap
            lab = lm.table.get(v)
            if item.text().strip() and item.text() != lab.name:
                lm.table = lm.table.with_label(replace(lab, name=item.text().strip()))
                self.model.notify("segments")

    def _cell_double_clicked(self, row: int, col: int) -> None:
        if col != 2:
            return
        v = self.values()[row]
        lab = self.model.labelmap.table.get(v)
        chosen = QtWidgets.QColorDialog.getColor(QtGui.QColor(*lab.color), self, f"Colour of {lab.name}")
        if chosen.isValid():
            self.model.set_segment_color(v, (chosen.red(), chosen.green(), chosen.blue()))
