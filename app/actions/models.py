"""Models: the default model for an image, and importing a model from a typed request.

The GUI's import dialog and the CLI's ``import-model`` both fill an ``ImportSpec`` (from text with
``ImportSpec.from_text``) and call ``import_model``; what is missing or malformed is refused with a
DelineateError saying what to give. torch is imported only when a model is imported."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from core.errors import Cancelled, DelineateError
from core.progress import CancelToken, ProgressFn, no_progress
from inference.card import DATASET_NORMALISATIONS, NORMALISATIONS, ModelCard

#: what can be imported, in the order the import dialog offers them
KINDS = ("torchscript", "onnx", "monai-bundle", "nnunet")
#: normalisations a user may choose for a model whose files do not say (the others need dataset statistics)
IMPORT_NORMALISATIONS = tuple(k for k in NORMALISATIONS if k not in DATASET_NORMALISATIONS)
DEFAULT_CT_WINDOW = (-1000.0, 1000.0)


class NoDefaultModel(DelineateError):
    """No model is made for this kind of image: one must be chosen, knowingly."""

    def __init__(self, modality: str, dims: int, candidates: list) -> None:
        self.candidates = candidates  # same dimensionality first
        names = ", ".join(f"{c.id} ({c.modality} {c.spatial_dims}D)" for c in candidates[:6]) or "none registered"
        super().__init__(f"no model is made for {modality} {dims}D images; a model for other images would run "
                         f"outside what it was trained on. Choose one explicitly (--model ID): {names}")


def default_model(volume, registry=None) -> ModelCard:
    """The model an image gets when none is named: the shipped or latest promoted model for its
    modality and dimensionality. Never one made for another modality or dimension: then
    NoDefaultModel lists the candidates. With no image open (``None``), the 3D MR default, the
    bundled sample's."""
    from inference.registry import Registry

    reg = registry if registry is not None else Registry()
    modality, dims = ("MR", 3) if volume is None else (volume.modality or "OT", 2 if volume.is_2d else 3)
    exact = [c for c in reg.cards() if c.promoted and c.modality == modality and c.spatial_dims == dims]
    if not exact:
        others = {c.id: c for c in reg.cards() if c.promoted}  # one per model
        raise NoDefaultModel(modality, dims, sorted(others.values(), key=lambda c: (c.spatial_dims != dims, c.id)))
    return reg.default_for(modality, dims)


@dataclass
class ImportSpec:
    """A model import request: what the model's files do not say, given by the user."""
    kind: str  # one of KINDS
    path: Path
    id: Optional[str] = None
    modality: Optional[str] = None
    labels: Optional[dict[int, str]] = None
    patch: Optional[list[int]] = None  # in the network's array order
    spacing: Optional[list[float]] = None  # x, y, z mm; None: the image's own grid
    normalisation: dict = field(default_factory=lambda: {"kind": "zscore"})
    fold: str = "0"  # nnU-Net
    trust_code: bool = False  # TorchScript: the user's decision to run the model's code

    @classmethod
    def from_text(cls, kind: str, path, *, id: str = "", modality: str = "", labels: str = "", patch: str = "",
                  spacing: str = "", norm: str = "zscore", window: str = "", fold: str = "0",
                  trust_code: bool = False) -> "ImportSpec":
        """The request from the fields as typed (CLI arguments, dialog line edits); empty means not given."""
        norm_spec = {"kind": norm}
        if norm == "ct_window":
            low, high = _numbers(window, float, "the CT window", "LOW,HIGH in HU, e.g. -1000,1000") \
                or DEFAULT_CT_WINDOW
            norm_spec.update(low=low, high=high)
        return cls(kind, Path(str(path).strip()), id=(id or "").strip() or None,
                   modality=(modality or "").strip() or None, labels=_labels(labels),
                   patch=_numbers(patch, int, "the patch size", "whole numbers, e.g. 96,96,96"),
                   spacing=_numbers(spacing, float, "the spacing", "x,y,z in mm, e.g. 1.5,1.5,2"),
                   normalisation=norm_spec, fold=str(fold or "0"), trust_code=bool(trust_code))


def _labels(text: str) -> Optional[dict[int, str]]:
    if not (text or "").strip():
        return None
    out = {}
    for item in text.split(","):
        value, sep, name = item.partition("=")
        try:
            key = int(value)
        except ValueError:
            key = None
        if not sep or key is None or not name.strip():
            raise DelineateError(f"labels are VALUE=NAME pairs separated by commas, e.g. 1=liver,2=tumour "
                                 f"(not {item.strip()!r})")
        out[key] = name.strip()
    return out


def _numbers(text: str, kind, what: str, form: str) -> Optional[list]:
    if not (text or "").strip():
        return None
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise DelineateError(f"{what} is {form} (not {text.strip()!r})") from None
    if what == "the CT window" and len(values) != 2:
        raise DelineateError(f"{what} is {form} (not {text.strip()!r})")
    return values


def _check(spec: ImportSpec) -> None:
    if spec.kind not in KINDS:
        raise DelineateError(f"unknown model kind {spec.kind!r}; choose from {', '.join(KINDS)}")
    if not str(spec.path) or str(spec.path) == ".":
        raise DelineateError("name the model file or folder to import")
    norm = spec.normalisation.get("kind")
    if norm not in NORMALISATIONS:
        raise DelineateError(f"unknown intensity normalisation {norm!r}; choose from {', '.join(IMPORT_NORMALISATIONS)}")
    if norm in DATASET_NORMALISATIONS and not {"low", "high", "mean", "std"} <= set(spec.normalisation):
        raise DelineateError(f"{norm} needs the training set's clip bounds, mean and std; choose from "
                             f"{', '.join(IMPORT_NORMALISATIONS)}")
    if norm == "ct_window" and not float(spec.normalisation.get("low", 0)) < float(spec.normalisation.get("high", 0)):
        raise DelineateError("the CT window is LOW,HIGH in HU with LOW below HIGH")
    if spec.patch is not None and (len(spec.patch) not in (2, 3) or min(spec.patch) < 1):
        raise DelineateError(f"the patch size is 2 or 3 positive whole numbers (not {spec.patch})")
    if spec.spacing is not None and (len(spec.spacing) != 3 or min(spec.spacing) <= 0):
        raise DelineateError(f"the spacing is 3 positive numbers x,y,z in mm (not {spec.spacing})")
    if spec.kind == "torchscript" and not (spec.id and spec.patch and spec.modality):
        raise DelineateError("torchscript import needs an id, a patch size and a modality")
    if spec.kind == "onnx" and not (spec.id and spec.modality):
        raise DelineateError("onnx import needs an id and a modality")


def import_model(spec: ImportSpec, root: Optional[Path] = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelToken] = None) -> ModelCard:
    """Register the model ``spec`` names under ``root`` (default: the user's model folder), in a
    sanitised ``<id>/<version>`` folder, and return its card. Model files are read as data; a
    TorchScript program runs (confined) only with ``spec.trust_code``."""
    _check(spec)
    progress = progress or no_progress
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled by the user")
    from inference import importers
    from inference.registry import user_models_dir

    root = Path(root) if root is not None else user_models_dir()
    progress(0.0, f"importing {spec.path}")
    if spec.kind == "torchscript":
        card = importers.import_torchscript(spec.path, root, model_id=spec.id, spatial_dims=len(spec.patch),
                                            patch_size=spec.patch, modality=spec.modality,
                                            normalisation=spec.normalisation, labels=spec.labels,
                                            spacing=spec.spacing, trust_code=spec.trust_code)
    elif spec.kind == "onnx":
        card = importers.import_onnx(spec.path, root, model_id=spec.id, modality=spec.modality,
                                     normalisation=spec.normalisation, labels=spec.labels, patch_size=spec.patch,
                                     spacing=spec.spacing)
    elif spec.kind == "monai-bundle":
        card = importers.import_monai_bundle(spec.path, root, model_id=spec.id, modality=spec.modality)
    else:
        card = importers.import_nnunet(spec.path, root, model_id=spec.id, modality=spec.modality, fold=spec.fold)
    progress(1.0, f"imported {card.id} v{card.version}")
    return card
