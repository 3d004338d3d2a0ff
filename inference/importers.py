"""Turn a user's model into a registry entry with a card: TorchScript, ONNX, a MONAI bundle folder,
an nnU-Net v2 trained-model folder. What the files cannot say (labels' meaning, modality,
intensity handling for TorchScript/ONNX) comes from the caller: the GUI asks, the CLI takes
options. Weights end up as safetensors where the model is rebuilt from a definition (bundle,
nnU-Net); TorchScript and ONNX files are copied as they are (they hold their own graph).

A model is untrusted input (see README, Security): bundle configs and nnU-Net plans are read as data
(inference/import_bundle.py, inference/import_nnunet.py), pickles are never unpickled beyond
tensors, names never become paths, and TorchScript -- a program -- is imported only on the user's
recorded decision and run in a confined child process (inference/sandboxed_torchscript.py). Every
failure is one line; files are written into a temporary folder inside the registry and renamed only
when the import succeeded, so a refused model leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from core.errors import DelineateError
from core.labels import Label, LabelTable
from inference.card import ModelCard
from inference.registry import inside, safe_id, safe_version, staged
from inference.weights import UnsafeModelError, refuse_pickle_payloads, save_weights, sha256

TRUST_FLAG = "--trust-code"


def _labels(names: Optional[dict[int, str]], n_classes: int) -> LabelTable:
    names = names or {v: f"Label {v}" for v in range(1, n_classes)}
    return LabelTable(tuple(Label.from_dict({"value": int(v), "name": str(n)}) for v, n in sorted(names.items())
                            if int(v) > 0))


@contextlib.contextmanager
def _one_line(src) -> Iterator[None]:
    """Whatever goes wrong while importing ``src`` is reported as one line, never a traceback (the
    libraries' own warnings about a model's odd arguments are not printed either)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except DelineateError as exc:
        text = " ".join(str(exc).split())
        if str(src) not in text:  # every message names the model it is about
            text = f"{src}: {text}"
        if text == str(exc):
            raise
        raise (type(exc)(text) if isinstance(exc, UnsafeModelError) else DelineateError(text)) from None
    except Exception as exc:  # noqa: BLE001 - a crafted model can make a library raise anything
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DelineateError(f"{src}: cannot import: {type(exc).__name__}"
                             + (f": {lines[0][:300]}" if lines else "")) from None


def _register(root: Path, card: ModelCard, write: Callable[[Path], str]) -> ModelCard:
    """Write the model's files (``write`` returns the weights' sha256) and card into a staging folder
    inside ``root``, then rename it to <root>/<id>/<version>."""
    card.id, card.version = safe_id(card.id, "id"), safe_version(card.version)
    with staged(root, card.id, card.version) as tmp:
        card.weights_sha256 = write(tmp)
        card.save(tmp)
        ModelCard.load(tmp / "card.json")  # a card that would not validate is not registered
    return ModelCard.load(inside(root, card.id, card.version) / "card.json")


# -- TorchScript ---------------------------------------------------------------------------------------
def import_torchscript(path: Path, root: Path, *, model_id: str, spatial_dims: int, patch_size: list[int],
                       modality: str, normalisation: dict, labels: Optional[dict[int, str]] = None,
                       spacing=None, in_channels: int = 1, version: str = "1.0.0", trust_code: bool = False,
                       training_data: str = "unknown (imported TorchScript model)", licence: str = "unknown") -> ModelCard:
    """A TorchScript file is a program: imported only with ``trust_code`` (the user's decision, recorded
    on the card), probed and later run in a confined child process."""
    path = Path(path)
    with _one_line(path):
        if not trust_code:
            raise UnsafeModelError(
                f"{path}: refused: a TorchScript model is a program that runs its own code; import it only if you "
                f"trust where it came from ({TRUST_FLAG}, or the import dialog's 'Run it?' box), or ask for ONNX")
        from inference.weights import check_torchscript_archive

        check_torchscript_archive(path)
        model_id, version = safe_id(model_id, "id"), safe_version(version)
        from inference.sandboxed_torchscript import TorchScriptProcess

        with TorchScriptProcess(path, "cpu") as proc:
            out = proc.run(torch.zeros((1, in_channels, *patch_size)).numpy())
            confinement = proc.confinement
        if out.ndim != len(patch_size) + 2:
            raise DelineateError(f"{path}: the model's output has shape {list(out.shape)}, not [batch, classes, "
                                 f"{'z, ' if spatial_dims == 3 else ''}y, x]")
        digest = sha256(path)
        card = ModelCard(id=model_id, version=version, name=f"{model_id} (TorchScript)", architecture="TorchScript",
                         parameters={"trusted_code": {"decision": f"imported with {TRUST_FLAG}", "sha256": digest,
                                                      "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}},
                         spatial_dims=spatial_dims, modality=modality, in_channels=in_channels,
                         labels=_labels(labels, int(out.shape[1])), normalisation=normalisation,
                         patch_size=list(patch_size), training_data=training_data, licence=licence,
                         weights="model.ts", spacing=spacing, orientation="LPS" if spacing else None,
                         notes="Contains code (TorchScript): imported on the user's explicit decision to run it; it "
                               f"runs in a separate process ({confinement}).")

        def write(folder: Path) -> str:
            shutil.copyfile(path, folder / "model.ts")
            if sha256(folder / "model.ts") != digest:
                raise DelineateError(f"{path}: the file changed while it was imported")
            return digest

        return _register(root, card, write)


# -- ONNX -----------------------------------------------------------------------------------------------
class OnnxModule(torch.nn.Module):
    """An ONNX Runtime session behind the nn.Module interface the sliding window calls."""

    def __init__(self, path: Path, device: torch.device) -> None:
        super().__init__()
        import onnxruntime as ort

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else \
            ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), providers=[p for p in providers
                                                                   if p in ort.get_available_providers()])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


def _onnx_model(path: Path):
    """The ONNX graph, read without following external-data paths; a pickle or zip (a PyTorch
    checkpoint) in an .onnx file is refused or reported for what it is."""
    import onnx

    if not path.is_file():
        raise DelineateError(f"{path}: no such file")
    if refuse_pickle_payloads(path):
        raise DelineateError(f"{path}: not an ONNX model but a PyTorch checkpoint; export the model to ONNX")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors
        raise DelineateError(f"{path}: not a valid ONNX model ({type(exc).__name__})") from None
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            where = {e.key: e.value for e in tensor.external_data}.get("location", "?")
            raise UnsafeModelError(f"{path}: refused: tensor {tensor.name!r} points to an external file "
                                   f"{where!r}; save the model as one .onnx file")
    return model


def import_onnx(path: Path, root: Path, *, model_id: str, modality: str, normalisation: dict,
                labels: Optional[dict[int, str]] = None, patch_size: Optional[list[int]] = None, spacing=None,
                version: str = "1.0.0", training_data: str = "unknown (imported ONNX model)",
                licence: str = "unknown") -> ModelCard:
    path = Path(path)
    with _one_line(path):
        model_id, version = safe_id(model_id, "id"), safe_version(version)
        model = _onnx_model(path)
        if not model.graph.input:
            raise DelineateError(f"{path}: the graph has no input")
        dims = [d.dim_value if d.dim_value > 0 else None for d in model.graph.input[0].type.tensor_type.shape.dim]
        if len(dims) not in (4, 5):
            raise DelineateError(f"{path}: expected an input [batch, channels, (z,) y, x], got {len(dims)} dimensions")
        patch = patch_size or dims[2:]
        if any(p is None for p in patch):
            raise DelineateError(f"{path}: the input's spatial size is dynamic; give the patch size")
        in_channels = dims[1] or 1
        out = OnnxModule(path, torch.device("cpu"))(torch.zeros((1, in_channels, *patch)))
        card = ModelCard(id=model_id, version=version, name=f"{model_id} (ONNX)", architecture="ONNX",
                         parameters={}, spatial_dims=len(patch), modality=modality, in_channels=in_channels,
                         labels=_labels(labels, int(out.shape[1])), normalisation=normalisation,
                         patch_size=list(patch), training_data=training_data, licence=licence,
                         weights="model.onnx", spacing=spacing, orientation="LPS" if spacing else None)

        def write(folder: Path) -> str:
            shutil.copyfile(path, folder / "model.onnx")
            return sha256(folder / "model.onnx")

        return _register(root, card, write)


# -- MONAI bundle ---------------------------------------------------------------------------------------
def import_monai_bundle(bundle: Path, root: Path, *, model_id: Optional[str] = None,
                        modality: Optional[str] = None, version: Optional[str] = None) -> ModelCard:
    """configs/metadata.json (labels, channels), configs/inference.json|yaml (network_def, spacing,
    intensity scaling, roi), models/model.pt (weights-only state dict) -> safetensors + card. The
    configs are read as data (inference/import_bundle.py); nothing in them is evaluated."""
    from inference import import_bundle as ib
    from inference.weights import load_state

    bundle = Path(bundle)
    with _one_line(bundle):
        meta_path = bundle / "configs" / "metadata.json"
        if not meta_path.is_file():
            raise DelineateError(f"{bundle}: not a MONAI bundle (no configs/metadata.json)")
        meta = ib.read_config(meta_path)
        cfg_path = ib.find_config(bundle, "inference")
        if cfg_path is None:
            raise DelineateError(f"{bundle}: no configs/inference.json (or .yaml)")
        config = ib.read_config(cfg_path)
        where = f"{cfg_path.relative_to(bundle)}"
        if "network_def" not in config:
            raise DelineateError(f"{bundle}: {where} has no network_def")
        name = str(meta.get("name", bundle.name))
        model_id = safe_id(model_id or name, "id" if model_id else "name")
        version = safe_version(version or str(meta.get("version", "1.0.0")))
        net, net_def = ib.build_network(config["network_def"], config, f"{where}: network_def")
        missing, unexpected = net.load_state_dict(load_state(bundle / "models" / "model.pt"), strict=False)
        if missing or unexpected:
            raise DelineateError(f"{bundle / 'models' / 'model.pt'}: weights do not fit network_def (missing "
                                 f"{list(missing)[:3]}, unexpected {list(unexpected)[:3]})")
        fmt = meta.get("network_data_format", {})
        inp, out = fmt.get("inputs", {}).get("image", {}), fmt.get("outputs", {}).get("pred", {})
        channel_def = out.get("channel_def") or {}
        labels = {int(k): str(v) for k, v in channel_def.items() if int(k) > 0} or None
        items = ib.transforms(config, where)
        spacing_t = ib.transform(items, "Spacing", config, ("pixdim",))
        scale_t = ib.transform(items, "ScaleIntensityRange", config, ("a_min", "a_max"))
        if scale_t is not None:
            norm = {"kind": "ct_window", "low": float(scale_t.get("a_min", 0)), "high": float(scale_t.get("a_max", 1))}
        else:
            norm = {"kind": "zscore"}
        inferer = ib.deref(config.get("inferer"), config, f"{where}: inferer")
        roi = ib.literal(inferer.get("roi_size"), config, f"{where}: inferer.roi_size") \
            if isinstance(inferer, dict) else None
        roi = roi or inp.get("spatial_shape")
        if not (isinstance(roi, list) and len(roi) in (2, 3) and all(isinstance(r, int) and r > 0 for r in roi)):
            raise DelineateError(f"{bundle}: {where}: inferer.roi_size (or the metadata's spatial_shape) must be "
                                 "2 or 3 positive integers")
        dims = len(roi)
        has_orientation = ib.transform(items, "Orientation", config, ()) is not None
        card = ModelCard(id=model_id, version=version, name=name,
                         architecture="MONAIBundle", parameters={"network_def": net_def}, spatial_dims=dims,
                         modality=modality or str(inp.get("modality", "OT")), in_channels=int(inp.get("num_channels", 1)),
                         labels=_labels(labels, int(out.get("num_channels", 2))), normalisation=norm,
                         patch_size=[int(r) for r in roi],
                         training_data=str(meta.get("data_source", "see the bundle's metadata")),
                         licence=str(meta.get("license", meta.get("licence", "see the bundle"))),
                         spacing=[float(v) for v in spacing_t["pixdim"]] if spacing_t and "pixdim" in spacing_t else None,
                         orientation="RAS" if dims == 3 else None,
                         notes=f"Imported from the MONAI bundle {bundle.name} v{version}: run on "
                               "RAS-aligned (x, y, z) arrays, as MONAI's LoadImage + Orientation(RAS) give it."
                               + ("" if has_orientation else " The bundle has no Orientation transform; RAS is assumed."))
        return _register(root, card, lambda folder: save_weights(net, folder / "model.safetensors"))


# -- nnU-Net v2 -------------------------------------------------------------------------------------------
def import_nnunet(model_folder: Path, root: Path, *, fold: str = "0", model_id: Optional[str] = None,
                  modality: Optional[str] = None, version: str = "1.0.0") -> ModelCard:
    from inference import import_bundle as ib
    from inference import import_nnunet as nn

    model_folder = Path(model_folder)
    with _one_line(model_folder):
        parts = model_folder.name.split("__")
        if len(parts) != 3:
            raise DelineateError(f"{model_folder}: not an nnU-Net v2 Trainer__Plans__configuration folder")
        trainer, _plans_name, configuration = parts
        plans = ib.read_config(model_folder / "plans.json")
        dataset = ib.read_config(model_folder / "dataset.json")
        cfg = plans.get("configurations", {}).get(configuration)
        if not isinstance(cfg, dict):
            raise DelineateError(f"{model_folder}: plans.json has no configuration {configuration!r}")
        ckpt_path = next((p for p in (model_folder / f"fold_{fold}" / n for n in ("checkpoint_final.pth",
                                                                                 "checkpoint_best.pth"))
                          if p.is_file()), None)
        if ckpt_path is None:
            raise DelineateError(f"{model_folder}: no fold_{fold}/checkpoint_final.pth")
        dataset_name = str(plans.get("dataset_name", model_folder.parent.name))
        model_id = safe_id(model_id or f"nnunet-{dataset_name}-{configuration}", "id" if model_id else "dataset name")
        version = safe_version(version)
        labels = {int(v): str(k) for k, v in dataset["labels"].items() if isinstance(v, int) and v > 0}
        if not labels:
            raise DelineateError(f"{model_folder}: dataset.json names no labels")
        n_out = max(labels) + 1
        n_in = len(dataset["channel_names"])
        net = nn.network(plans, configuration, n_in, n_out, str(model_folder / "plans.json"))
        ckpt = nn.checkpoint(ckpt_path)
        missing, unexpected = net.load_state_dict(ckpt["network_weights"], strict=False)
        if missing or unexpected:
            raise DelineateError(f"{ckpt_path}: weights do not fit the plans (missing {list(missing)[:3]}, "
                                 f"unexpected {list(unexpected)[:3]})")
        schemes = cfg.get("normalization_schemes", ["ZScoreNormalization"])
        if schemes[0] == "CTNormalization":
            props = plans["foreground_intensity_properties_per_channel"]["0"]
            norm = {"kind": "ct_clip_zscore", "low": props["percentile_00_5"], "high": props["percentile_99_5"],
                    "mean": props["mean"], "std": props["std"]}
        else:
            norm = {"kind": "zscore", "foreground": False}
        channel = str(dataset["channel_names"].get("0", "")).upper()
        spacing_zyx = cfg["spacing"]
        dims = len(cfg["patch_size"])
        card = ModelCard(
            id=model_id, version=version, name=f"nnU-Net {plans.get('dataset_name', '')} {configuration}",
            architecture="nnUNetPlainConvUNet",
            parameters={"plans": plans, "configuration": configuration, "in_channels": n_in, "out_channels": n_out},
            spatial_dims=dims, modality=modality or ("CT" if channel == "CT" else "MR" if "MR" in channel
                                                     or "T1" in channel or "T2" in channel else channel or "OT"),
            in_channels=n_in, labels=_labels(labels, n_out), normalisation=norm, patch_size=list(cfg["patch_size"]),
            training_data=f"nnU-Net dataset {plans.get('dataset_name', '?')} ({dataset.get('numTraining', '?')} "
                          "cases); see its dataset.json", licence="see the model's source",
            spacing=[float(s) for s in spacing_zyx[::-1]] if dims == 3 else None,
            orientation="image" if dims == 3 else None, overlap=0.5,
            notes=f"Imported from {model_folder.name}, fold {fold}, trainer {ckpt.get('trainer_name', trainer)}. "
                  "Run on the image's own axes at the plans' spacing, as nnU-Net does; test-time mirroring is off.")
        return _register(root, card, lambda folder: save_weights(net, folder / "model.safetensors"))


# -- loading imported models --------------------------------------------------------------------------
def load_imported(card: ModelCard, device: torch.device) -> torch.nn.Module:
    """The network an imported card describes, rebuilt through the same allow-lists as at import (a card
    is a file too); TorchScript only with the recorded decision, in its child process."""
    from inference.weights import load_into, verify

    path = verify(card.weights_path, card.weights_sha256)
    if card.architecture == "TorchScript":
        decision = card.parameters.get("trusted_code")
        if not isinstance(decision, dict) or decision.get("sha256") != card.weights_sha256:
            raise UnsafeModelError(f"{card.id}: refused: the card records no decision to run this TorchScript "
                                   f"model's code; import it again with {TRUST_FLAG} if you trust it")
        from inference.sandboxed_torchscript import TorchScriptProcess

        return TorchScriptProcess(path, device)
    if card.architecture == "ONNX":
        return OnnxModule(path, device)
    if card.architecture == "MONAIBundle":
        from inference.import_bundle import build_network

        net, _ = build_network(card.parameters["network_def"], where=f"{card.id}: card parameters.network_def")
    elif card.architecture == "nnUNetPlainConvUNet":
        from inference.import_nnunet import network

        p = card.parameters
        net = network(p["plans"], p["configuration"], p["in_channels"], p["out_channels"], f"{card.id}: card plans")
    else:
        raise DelineateError(f"{card.id}: unknown imported architecture {card.architecture}")
    load_into(net, path)
    return net
