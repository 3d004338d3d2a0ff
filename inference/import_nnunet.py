"""nnU-Net v2 plans read as data: the class names in ``plans.json`` (conv, norm, dropout, nonlin) map
through an allow-list of ``torch.nn`` classes; anything else is refused by name, never located
(nnU-Net itself imports whatever dotted name the plans give). Checkpoints are read weights-only."""
from __future__ import annotations

import numpy as np
import torch

from core.errors import DelineateError
from inference.weights import UnsafeModelError, UnsafeWeightsError, unpickling_detail

NETWORK = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
MAX_PARAMETERS = 2_000_000_000
#: arch_kwargs that name a class, and the torch.nn classes each may name
CLASSES = {
    "conv_op": ("Conv1d", "Conv2d", "Conv3d"),
    "norm_op": ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
                "GroupNorm", "LayerNorm"),
    "dropout_op": ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"),
    "nonlin": ("ReLU", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Mish", "Hardswish", "Tanh", "Sigmoid"),
}


def torch_class(key: str, name, where: str):
    """torch.nn.<X> for an allowed X, named as nnU-Net writes it ("torch.nn.X" or the class's full
    module path, e.g. "torch.nn.modules.conv.Conv3d"); None stays None."""
    if name is None:
        return None
    if isinstance(name, str):
        short = name.rsplit(".", 1)[-1]
        if short in CLASSES[key]:
            cls = getattr(torch.nn, short)
            if name in (short, f"torch.nn.{short}", f"{cls.__module__}.{short}"):
                return cls
    raise UnsafeModelError(f"{where}.{key}: refused: {str(name)[:80]!r} is not an allowed torch.nn class for "
                           f"{key} (allowed: {', '.join(CLASSES[key])})")


def network(plans: dict, configuration: str, n_in: int, n_out: int, where: str = "plans.json") -> torch.nn.Module:
    arch = plans["configurations"][configuration]["architecture"]
    at = f"{where}: configurations.{configuration}.architecture"
    if arch.get("network_class_name") != NETWORK:
        raise UnsafeModelError(f"{at}.network_class_name: refused: {str(arch.get('network_class_name'))[:80]!r} "
                               f"(the network imported is {NETWORK})")
    kwargs = dict(arch["arch_kwargs"])
    for key in arch.get("_kw_requires_import", []):
        if key not in CLASSES:
            raise UnsafeModelError(f"{at}._kw_requires_import: refused: '{str(key)[:40]}' does not name a class "
                                   "Delineate builds (conv_op, norm_op, dropout_op, nonlin)")
    for key in CLASSES:
        if key in kwargs:
            kwargs[key] = torch_class(key, kwargs[key], f"{at}.arch_kwargs")
    for key, value in kwargs.items():
        if key not in CLASSES and isinstance(value, str):
            raise UnsafeModelError(f"{at}.arch_kwargs.{key}: refused: a string {value[:60]!r} where nnU-Net "
                                   "expects numbers")
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    try:
        with torch.device("meta"):  # count first: crafted plans must not exhaust memory
            n = sum(p.numel() for p in PlainConvUNet(input_channels=n_in, num_classes=n_out, deep_supervision=False,
                                                     **kwargs).parameters())
    except Exception:  # noqa: BLE001 - the real build below reports bad arguments
        n = 0
    if n > MAX_PARAMETERS:
        raise UnsafeModelError(f"{at}.arch_kwargs: refused: the network would have {n:,} parameters")
    try:
        return PlainConvUNet(input_channels=n_in, num_classes=n_out, deep_supervision=False, **kwargs)
    except (TypeError, ValueError, RuntimeError, AssertionError, IndexError) as exc:
        raise DelineateError(f"{at}.arch_kwargs: PlainConvUNet rejected them ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def checkpoint(path) -> dict:
    """nnU-Net checkpoints are pickles of dicts holding tensors, plain values and numpy scalars: read
    with weights_only, allowing numpy scalar types and nothing else."""
    safe = [np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32)), type(np.dtype(np.int64))]
    try:
        safe.append(np._core.multiarray.scalar)
    except AttributeError:
        safe.append(np.core.multiarray.scalar)
    try:
        with torch.serialization.safe_globals(safe):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise UnsafeWeightsError(f"{path}: refused: the checkpoint needs Python objects beyond tensors and "
                                 f"numbers ({unpickling_detail(exc)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("network_weights"), dict):
        raise DelineateError(f"{path}: not an nnU-Net checkpoint (no network_weights)")
    return ckpt
