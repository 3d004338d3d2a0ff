"""Model cards: everything needed to run a model correctly and to judge what it is worth.

A card is JSON beside the weights in ``<models>/<id>/<version>/card.json``. It is validated when
read; a card that does not validate is refused with a message naming the file and the field.
No torch here: cards are read by the registry, the GUI and the store without loading a model.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from core.errors import DelineateError
from core.labels import Label, LabelTable

#: networks inference/networks.py builds from a card's parameters
BUILT = ("UNet", "AttentionUnet", "BasicUNetPlusPlus", "ResUNetPP", "DynUNet", "FCN", "DeepLab", "SegNet", "SegResNet",
         "UNETR", "SwinUNETR", "TransUNet", "AdversarialUNet", "DiffusionSegmenter")
ARCHITECTURES = BUILT + ("TorchScript", "ONNX", "MONAIBundle", "nnUNetPlainConvUNet")
#: intensity normalisations the runner applies (inference.runner.normalise), by card.normalisation.kind
NORMALISATIONS = ("zscore", "ct_window", "ct_clip_zscore", "percentile", "minmax", "none")
#: those that need a training set's statistics (clip bounds, mean, std): set by the importers that read
#: them (nnU-Net), never chosen by hand for an imported model
DATASET_NORMALISATIONS = ("ct_clip_zscore",)
#: where a model may run (inference.device.pick); "auto": CUDA, then Apple MPS, then the CPU
DEVICES = ("auto", "cpu", "cuda", "mps")
#: how the network's array axes relate to the patient (see inference.runner.model_grid):
#: "LPS" arrays [z, y, x] on an LPS-aligned grid; "RAS" arrays [x, y, z] on a RAS-aligned grid (MONAI);
#: "image" the image's own axes resampled to the card's spacing (nnU-Net); null the image's grid as is
ORIENTATIONS = (None, "LPS", "RAS", "image")
NOT_CLINICAL = "Research use only. Not for clinical use: not a medical device, no clinical validation."


class CardError(DelineateError):
    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: invalid model card: {problem}")


@dataclass
class Metric:
    name: str
    value: float
    data: str  # what it was measured on

    @classmethod
    def from_dict(cls, d: dict) -> "Metric":
        return cls(str(d["name"]), float(d["value"]), str(d["data"]))


@dataclass
class ModelCard:
    id: str
    version: str
    name: str
    architecture: str
    parameters: dict
    spatial_dims: int
    modality: str
    in_channels: int
    labels: LabelTable
    normalisation: dict
    patch_size: list[int]
    training_data: str
    licence: str
    weights: str = "model.safetensors"
    weights_sha256: str = ""
    orientation: Optional[str] = "LPS"  # None: the image's own grid is used (2D images)
    spacing: Optional[list[float]] = None  # (x, y, z) mm; None: native spacing
    overlap: float = 0.5
    metrics: list[Metric] = field(default_factory=list)
    parent_version: Optional[str] = None
    intended_use: str = NOT_CLINICAL
    notes: str = ""
    created: str = ""
    keep_largest_component: bool = False
    # pieces of these labels lying mostly outside the body are removed (inference.inside_body):
    # {"labels": [values], "threshold": intensity above which tissue is body, "why": anatomy}
    inside_body: Optional[dict] = None
    # runs inside the region another model finds (inference.mask_from):
    # {"model": id, "version": v, "margin_mm": grown by, "why": what for}
    mask_from: Optional[dict] = None
    # at most this many connected pieces of a label, the largest (inference.runner.most_pieces):
    # {"labels": {"value": n}, "why": anatomy}
    most_pieces: Optional[dict] = None
    promoted: bool = True  # False: a retrained version that did not beat its parent (kept, not default)
    envelope: Optional[dict] = None  # what it was made for (inference.envelope.Envelope), calibrated
    calibration: Optional[dict] = None  # reliability and ECE on held-out cases (inference.xai_calibration)
    folder: Optional[Path] = None  # where it was read from (not serialised)

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("folder")
        d["labels"] = self.labels.to_dict()["labels"]
        d["metrics"] = [asdict(m) for m in self.metrics]
        return d

    def save(self, folder: Path) -> Path:
        from formats.atomic import atomic_output

        path = Path(folder) / "card.json"
        with atomic_output(path) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: dict, path="card") -> "ModelCard":
        def need(key, types):
            if key not in d:
                raise CardError(path, f"missing field '{key}'")
            if not isinstance(d[key], types):
                raise CardError(path, f"field '{key}' has the wrong type ({type(d[key]).__name__})")
            return d[key]

        arch = need("architecture", str)
        if arch not in ARCHITECTURES:
            raise CardError(path, f"unknown architecture '{arch}'; known: {', '.join(ARCHITECTURES)}")
        dims = need("spatial_dims", int)
        if dims not in (2, 3):
            raise CardError(path, "spatial_dims must be 2 or 3")
        patch = need("patch_size", list)
        if len(patch) != dims or not all(isinstance(p, int) and p > 0 for p in patch):
            raise CardError(path, f"patch_size must be {dims} positive integers")
        norm = need("normalisation", dict)
        if norm.get("kind") not in NORMALISATIONS:
            raise CardError(path, f"normalisation.kind must be one of {', '.join(NORMALISATIONS)}")
        raw_labels = need("labels", list)
        try:
            labels = LabelTable(tuple(Label.from_dict(x) for x in raw_labels))
        except (KeyError, TypeError, ValueError, DelineateError) as exc:
            raise CardError(path, f"labels: {exc}") from None
        values = [lab.value for lab in labels]
        if len(set(values)) != len(values) or not values or min(values) < 1:
            raise CardError(path, "labels need distinct values >= 1 (0 is background)")
        if d.get("orientation", "LPS") not in ORIENTATIONS:
            raise CardError(path, f"orientation must be one of {ORIENTATIONS}")
        spacing = d.get("spacing")
        if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
            raise CardError(path, "spacing must be 3 positive numbers (x, y, z) or null")
        for key in ("id", "version", "name", "modality", "training_data", "licence"):
            need(key, str)
        try:
            metrics = [Metric.from_dict(m) for m in d.get("metrics", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise CardError(path, f"metrics: {exc}") from None
        if d.get("envelope") is not None:
            from inference.envelope import Envelope

            try:
                Envelope.from_dict(d["envelope"])
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise CardError(path, f"envelope: {exc!r}") from None
        rule = d.get("inside_body")
        if rule is not None and not (isinstance(rule, dict) and isinstance(rule.get("threshold"), (int, float))
                                     and isinstance(rule.get("labels"), list) and rule["labels"]
                                     and set(rule["labels"]) <= set(values)):
            raise CardError(path, "inside_body needs 'labels' (values of the card's labels) and a numeric 'threshold'")
        rule = d.get("most_pieces")
        if rule is not None and not (isinstance(rule, dict) and isinstance(rule.get("labels"), dict) and rule["labels"]
                                     and all(str(k).isdigit() and int(k) in values and isinstance(n, int) and n >= 1
                                             for k, n in rule["labels"].items())):
            raise CardError(path, "most_pieces needs 'labels': {label value: how many pieces at most (>= 1)}")
        if d.get("mask_from") is not None:
            from inference.mask_from import check_rule

            try:
                check_rule(d["mask_from"])
            except ValueError as exc:
                raise CardError(path, str(exc)) from None
        known = {f for f in cls.__dataclass_fields__ if f != "folder"}
        extra = set(d) - known
        if extra:
            raise CardError(path, f"unknown field(s): {', '.join(sorted(extra))}")
        kw = {k: v for k, v in d.items() if k in known}
        kw.update(labels=labels, metrics=metrics, parameters=dict(d.get("parameters") or {}),
                  in_channels=int(d.get("in_channels", 1)))
        return cls(**kw)

    @classmethod
    def load(cls, path: Path) -> "ModelCard":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CardError(path, f"cannot read JSON ({exc})") from None
        if not isinstance(d, dict):
            raise CardError(path, "the card must be a JSON object")
        card = cls.from_dict(d, path)
        card.folder = path.parent
        return card

    @property
    def n_classes(self) -> int:
        """Output channels: background plus the highest label value."""
        return max(lab.value for lab in self.labels) + 1

    @property
    def weights_path(self) -> Path:
        return Path(self.folder) / self.weights

    def report_dict(self) -> dict:
        """What an export or report says about the model (plain data: exports do not import inference)."""
        text = self.training_data.lower()
        return {"id": self.id, "version": self.version, "name": self.name,
                "architecture": f"{self.architecture} {self.spatial_dims}D", "trained_on": self.training_data,
                "metrics": {m.name: m.value for m in self.metrics},
                "synthetic": any(w in text for w in ("synthetic", "generated", "phantom", "simulated"))}

    def summary(self) -> str:
        m = "; ".join(f"{x.name} {x.value:.3f} ({x.data})" for x in self.metrics) or "no metrics"
        return (f"{self.id} v{self.version} — {self.name}: {self.architecture} {self.spatial_dims}D, "
                f"{self.modality}, labels {', '.join(lab.name for lab in self.labels)}; {m}")
