"""Turn a user's model into a registry entry with a card: TorchScript, ONNX, a MONAI bundle folder,
an nnU-Net v2 trained-model folder. What the files cannot say (labels' meaning, modality,
intensity handling for TorchScript/ONNX) comes from the caller: the GUI asks, the CLI takes
options. Weights end up as safetensors where the model is rebuilt from a definition (bundle,
nnU-Net); TorchScript and ONNX files are copied as they are (they hold their own graph).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from core.errors import DelineateError
from core.labels import Label, LabelTable
from inference.card import ModelCard
from inference.weights import save_weights, sha256


def _labels(names: Optional[dict[int, str]], n_classes: int) -> LabelTable:
    names = names or {v: f"Label {v}" for v in range(1, n_classes)}
    return LabelTable(tuple(Label.from_dict({"value": int(v), "name": str(n)}) for v, n in sorted(names.items())
                            if int(v) > 0))


def _finish(card: ModelCard, folder: Path) -> ModelCard:
    card.save(folder)
    return ModelCard.load(folder / "card.json")


# -- TorchScript ---------------------------------------------------------------------------------------
def import_torchscript(path: Path, folder: Path, *, model_id: str, spatial_dims: int, patch_size: list[int],
                       modality: str, normalisation: dict, labels: Optional[dict[int, str]] = None,
                       spacing=None, in_channels: int = 1, version: str = "1.0.0",
                       training_data: str = "unknown (imported TorchScript model)", licence: str = "unknown") -> ModelCard:
    module = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.inference_mode():
        out = module(torch.zeros((1, in_channels, *patch_size)))
    out = out[0] if isinstance(out, (list, tuple)) else out
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / "model.ts")
    card = ModelCard(id=model_id, version=version, name=f"{model_id} (TorchScript)", architecture="TorchScript",
                     parameters={}, spatial_dims=spatial_dims, modality=modality, in_channels=in_channels,
                     labels=_labels(labels, int(out.shape[1])), normalisation=normalisation,
                     patch_size=list(patch_size), training_data=training_data, licence=licence,
                     weights="model.ts", weights_sha256=sha256(folder / "model.ts"), spacing=spacing,
                     orientation="LPS" if spacing else None)
    return _finish(card, folder)


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


def import_onnx(path: Path, folder: Path, *, model_id: str, modality: str, normalisation: dict,
                labels: Optional[dict[int, str]] = None, patch_size: Optional[list[int]] = None, spacing=None,
                version: str = "1.0.0", training_data: str = "unknown (imported ONNX model)",
                licence: str = "unknown") -> ModelCard:
    import onnx

    model = onnx.load(str(path))
    dims = [d.dim_value if d.dim_value > 0 else None for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) not in (4, 5):
        raise DelineateError(f"{path}: expected an input [batch, channels, (z,) y, x], got {len(dims)} dimensions")
    spatial = dims[2:]
    patch = patch_size or spatial
    if patch is None or any(p is None for p in patch):
        raise DelineateError(f"{path}: the input's spatial size is dynamic; give the patch size")
    in_channels = dims[1] or 1
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / "model.onnx")
    out = OnnxModule(folder / "model.onnx", torch.device("cpu"))(torch.zeros((1, in_channels, *patch)))
    card = ModelCard(id=model_id, version=version, name=f"{model_id} (ONNX)", architecture="ONNX",
                     parameters={}, spatial_dims=len(patch), modality=modality, in_channels=in_channels,
                     labels=_labels(labels, int(out.shape[1])), normalisation=normalisation,
                     patch_size=list(patch), training_data=training_data, licence=licence,
                     weights="model.onnx", weights_sha256=sha256(folder / "model.onnx"), spacing=spacing,
                     orientation="LPS" if spacing else None)
    return _finish(card, folder)


# -- MONAI bundle ---------------------------------------------------------------------------------------
def _bundle_transform(preprocessing: list, name: str) -> Optional[dict]:
    for t in preprocessing:
        if isinstance(t, dict) and str(t.get("_target_", "")).split(".")[-1] in (name, name + "d"):
            return t
    return None


def import_monai_bundle(bundle: Path, folder: Path, *, model_id: Optional[str] = None,
                        modality: Optional[str] = None, version: Optional[str] = None) -> ModelCard:
    """configs/metadata.json (labels, channels), configs/inference.json (network_def, spacing,
    intensity scaling, roi), models/model.pt (weights-only state dict) -> safetensors + card."""
    from monai.bundle import ConfigParser

    from inference.weights import load_state

    bundle = Path(bundle)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    net_def = parser.get("network_def")
    if net_def is None:
        raise DelineateError(f"{bundle}: configs/inference.json has no network_def")
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(load_state(bundle / "models" / "model.pt"))
    fmt = meta.get("network_data_format", {})
    inp, out = fmt.get("inputs", {}).get("image", {}), fmt.get("outputs", {}).get("pred", {})
    channel_def = out.get("channel_def") or {}
    labels = {int(k): v for k, v in channel_def.items() if int(k) > 0} or None
    pre = parser.get("preprocessing#transforms") or []
    spacing_t = _bundle_transform(pre, "Spacing")
    scale_t = _bundle_transform(pre, "ScaleIntensityRange")
    if scale_t is not None:
        norm = {"kind": "ct_window", "low": float(scale_t.get("a_min", 0)), "high": float(scale_t.get("a_max", 1))}
    else:
        norm = {"kind": "zscore"}
    roi = parser.get("inferer#roi_size") or inp.get("spatial_shape")
    dims = len(roi)
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_weights(net, folder / "model.safetensors")
    card = ModelCard(id=model_id or meta.get("name", bundle.name).lower().replace(" ", "-"),
                     version=version or str(meta.get("version", "1.0.0")), name=meta.get("name", bundle.name),
                     architecture="MONAIBundle", parameters={"network_def": net_def}, spatial_dims=dims,
                     modality=modality or str(inp.get("modality", "OT")), in_channels=int(inp.get("num_channels", 1)),
                     labels=_labels(labels, int(out.get("num_channels", 2))), normalisation=norm,
                     patch_size=[int(r) for r in roi],
                     training_data=str(meta.get("data_source", "see the bundle's metadata")),
                     licence=str(meta.get("license", meta.get("licence", "see the bundle"))),
                     weights_sha256=sha, spacing=[float(v) for v in spacing_t["pixdim"]] if spacing_t else None,
                     orientation="RAS" if dims == 3 else None,
                     notes=f"Imported from the MONAI bundle {bundle.name} v{meta.get('version', '?')}: run on "
                           "RAS-aligned (x, y, z) arrays, as MONAI's LoadImage + Orientation(RAS) give it."
                           + ("" if _bundle_transform(pre, "Orientation") else
                              " The bundle has no Orientation transform; RAS is assumed."))
    return _finish(card, folder)


# -- nnU-Net v2 -------------------------------------------------------------------------------------------
def _nnunet_network(plans: dict, configuration: str, n_in: int, n_out: int) -> torch.nn.Module:
    import pydoc

    arch = plans["configurations"][configuration]["architecture"]
    kwargs = dict(arch["arch_kwargs"])
    for key in arch.get("_kw_requires_import", []):
        if kwargs.get(key) is not None:
            kwargs[key] = pydoc.locate(kwargs[key])
    cls_name = arch["network_class_name"]
    if cls_name.split(".")[-1] != "PlainConvUNet":
        raise DelineateError(f"nnU-Net architecture {cls_name} is not supported yet (PlainConvUNet is)")
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    return PlainConvUNet(input_channels=n_in, num_classes=n_out, deep_supervision=False, **kwargs)


def _nnunet_checkpoint(path: Path) -> dict:
    """nnU-Net checkpoints are pickles of dicts holding tensors, plain values and numpy scalars: read
    with weights_only, allowing numpy scalar types and nothing else."""
    safe = [np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32)), type(np.dtype(np.int64))]
    try:
        safe.append(np._core.multiarray.scalar)
    except AttributeError:
        safe.append(np.core.multiarray.scalar)
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        from inference.weights import UnsafeWeightsError

        raise UnsafeWeightsError(f"{path}: refused: the checkpoint needs Python objects beyond tensors and "
                                 f"numbers ({str(exc).splitlines()[0]})") from None


def import_nnunet(model_folder: Path, folder: Path, *, fold: str = "0", model_id: Optional[str] = None,
                  modality: Optional[str] = None, version: str = "1.0.0") -> ModelCard:
    model_folder = Path(model_folder)
    plans = json.loads((model_folder / "plans.json").read_text())
    dataset = json.loads((model_folder / "dataset.json").read_text())
    trainer, plans_name, configuration = model_folder.name.split("__")
    cfg = plans["configurations"][configuration]
    ckpt_path = next((p for p in (model_folder / f"fold_{fold}" / n for n in ("checkpoint_final.pth", "checkpoint_best.pth"))
                      if p.is_file()), None)
    if ckpt_path is None:
        raise DelineateError(f"{model_folder}: no fold_{fold}/checkpoint_final.pth")
    ckpt = _nnunet_checkpoint(ckpt_path)
    labels = {int(v): k for k, v in dataset["labels"].items() if isinstance(v, int) and v > 0}
    n_out = max(labels) + 1
    n_in = len(dataset["channel_names"])
    net = _nnunet_network(plans, configuration, n_in, n_out)
    net.load_state_dict(ckpt["network_weights"])
    schemes = cfg.get("normalization_schemes", ["ZScoreNormalization"])
    if schemes[0] == "CTNormalization":
        props = plans["foreground_intensity_properties_per_channel"]["0"]
        norm = {"kind": "ct_clip_zscore", "low": props["percentile_00_5"], "high": props["percentile_99_5"],
                "mean": props["mean"], "std": props["std"]}
    else:
        norm = {"kind": "zscore", "foreground": False}
    channel = str(dataset["channel_names"].get("0", "")).upper()
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_weights(net, folder / "model.safetensors")
    spacing_zyx = cfg["spacing"]
    dims = len(cfg["patch_size"])
    card = ModelCard(
        id=model_id or f"nnunet-{plans.get('dataset_name', model_folder.parent.name).lower()}-{configuration}",
        version=version, name=f"nnU-Net {plans.get('dataset_name', '')} {configuration}",
        architecture="nnUNetPlainConvUNet",
        parameters={"plans": plans, "configuration": configuration, "in_channels": n_in, "out_channels": n_out},
        spatial_dims=dims, modality=modality or ("CT" if channel == "CT" else "MR" if "MR" in channel or "T1" in channel
                                                 or "T2" in channel else channel or "OT"),
        in_channels=n_in, labels=_labels(labels, n_out), normalisation=norm, patch_size=list(cfg["patch_size"]),
        training_data=f"nnU-Net dataset {plans.get('dataset_name', '?')} ({dataset.get('numTraining', '?')} cases); "
                      "see its dataset.json", licence="see the model's source",
        weights_sha256=sha, spacing=[float(s) for s in spacing_zyx[::-1]] if dims == 3 else None,
        orientation="image" if dims == 3 else None, overlap=0.5,
        notes=f"Imported from {model_folder.name}, fold {fold}, trainer {ckpt.get('trainer_name', trainer)}. "
              "Run on the image's own axes at the plans' spacing, as nnU-Net does; test-time mirroring is off.")
    return _finish(card, folder)


# -- loading imported models --------------------------------------------------------------------------
def load_imported(card: ModelCard, device: torch.device) -> torch.nn.Module:
    from inference.weights import load_into

    from inference.weights import verify

    path = verify(card.weights_path, card.weights_sha256)
    if card.architecture == "TorchScript":
        return torch.jit.load(str(path), map_location=device)
    if card.architecture == "ONNX":
        return OnnxModule(path, device)
    if card.architecture == "MONAIBundle":
        from monai.bundle import ConfigParser

        parser = ConfigParser({"network_def": card.parameters["network_def"]})
        net = parser.get_parsed_content("network_def")
    elif card.architecture == "nnUNetPlainConvUNet":
        p = card.parameters
        net = _nnunet_network(p["plans"], p["configuration"], p["in_channels"], p["out_channels"])
    else:
        raise DelineateError(f"{card.id}: unknown imported architecture {card.architecture}")
    load_into(net, path)
    return net
