"""Choose a model from the registry, read its card, pick the device."""
from __future__ import annotations

from typing import Optional

from PySide6 import QtWidgets

from gui.calibration_view import calibration_text, register
from inference.card import DEVICES


def benchmark_text(card, bench: dict) -> str:
    """The committed benchmark row of this card's architecture and dimensionality, if any."""
    found = [(task, r) for (task, arch, dims), r in bench.items() if arch == card.architecture
             and dims == card.spatial_dims]
    out = []
    for task, r in found:
        if "error" in r and r["error"]:
            out.append(f"<p><b>Benchmark ({task}):</b> failed to train: {r['error']}</p>")
            continue
        hd = f"{float(r['hd95_mm']):.1f} mm" if r.get("hd95_mm") else "–"
        out.append(f"<p><b>Benchmark</b> ({task}: same generated data and budget for every architecture, "
                   f"docs/benchmark-{task}.md): Dice {float(r['dice']):.3f}, IoU {float(r['iou']):.3f}, HD95 {hd}, "
                   f"ECE {float(r['ece']):.3f}, {float(r['infer_cpu_s']):.2f} s/case on CPU, rank {r['rank']} of "
                   f"{r['of']}{'' if r['sane'] == 'True' else ' — below a sane Dice'}</p>")
    return "".join(out)


def card_text(card, bench: Optional[dict] = None) -> str:
    lines = [f"<h3>{card.name}</h3>", f"<b>{card.id}</b> version {card.version}"
             + (f" (from {card.parent_version})" if card.parent_version else ""),
             f"<p><b>Network:</b> {card.architecture} {card.spatial_dims}D {card.parameters}</p>",
             f"<p><b>Modality:</b> {card.modality}; <b>grid:</b> "
             + (f"{card.orientation}-aligned at {card.spacing} mm" if card.orientation else "the image's own")
             + f"; <b>patch</b> {card.patch_size}; <b>intensity:</b> {card.normalisation}</p>",
             "<p><b>Labels:</b> " + ", ".join(f"{lab.value} {lab.name}" for lab in card.labels) + "</p>",
             f"<p><b>Trained on:</b> {card.training_data}</p>",
             "<p><b>Measured:</b><br>" + "<br>".join(f"{m.name} = {m.value:.3f} — {m.data}" for m in card.metrics)
             + "</p>" if card.metrics else "<p>No metrics.</p>",
             benchmark_text(card, bench or {}),
             calibration_text(card),
             f"<p><b>Region first:</b> inside what {card.mask_from['model']} v{card.mask_from['version']} finds, grown "
             f"{card.mask_from['margin_mm']:g} mm. {card.mask_from.get('why', '')}</p>" if card.mask_from else "",
             f"<p><b>After the network:</b> {card.inside_body.get('why', '')}</p>" if card.inside_body else "",
             f"<p><b>After the network:</b> {card.most_pieces.get('why', '')}</p>" if card.most_pieces else "",
             f"<p>{card.notes}</p>" if card.notes else "",
             f"<p><i>{card.intended_use}</i></p>", f"<p>Licence: {card.licence}</p>"]
    return "".join(lines)


class ModelDialog(QtWidgets.QDialog):
    def __init__(self, cards: list, problems: list[str], default=None, parent=None, run_text: str = "Run",
                 note: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Run a segmentation model")
        self.cards = cards
        self.note = QtWidgets.QLabel(note)  # why the user is asked (no model made for this image)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("background: #ffd43b; color: #212529; padding: 4px")
        self.note.setVisible(bool(note))
        self.list = QtWidgets.QListWidget()
        for c in cards:
            self.list.addItem(f"{c.name}  —  {c.id} v{c.version}")
        self.details = QtWidgets.QTextBrowser()
        self.device = QtWidgets.QComboBox()
        self.device.addItems(list(DEVICES))
        from inference.benchmark import committed_rows

        bench = committed_rows()
        self.list.currentRowChanged.connect(lambda r: self._show(cards[r] if r >= 0 else None, bench))
        if problems:
            self.details.setToolTip("\n".join(problems))
        split = QtWidgets.QSplitter()
        split.addWidget(self.list)
        split.addWidget(self.details)
        split.setSizes([300, 500])
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText(run_text)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QtWidgets.QHBoxLayout()
        form.addWidget(QtWidgets.QLabel("Device"))
        form.addWidget(self.device)
        form.addStretch(1)
        if problems:
            form.addWidget(QtWidgets.QLabel(f"{len(problems)} model card(s) refused (see tooltip)"))
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.note)
        lay.addWidget(split, 1)
        lay.addLayout(form)
        lay.addWidget(buttons)
        if cards:
            self.list.setCurrentRow(cards.index(default) if default in cards else 0)
        self.resize(900, 520)

    def _show(self, card, bench) -> None:
        if card is not None:
            register(self.details.document(), card)
        self.details.setHtml(card_text(card, bench) if card is not None else "")

    def chosen(self) -> Optional[object]:
        r = self.list.currentRow()
        return self.cards[r] if r >= 0 else None
