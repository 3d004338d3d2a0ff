"""Weights without unpickling code: safetensors, or torch.load(weights_only=True). A checkpoint
that needs arbitrary Python objects is refused, never executed."""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch

from core.errors import DelineateError


class UnsafeWeightsError(DelineateError):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected_sha256: str = "") -> Path:
    """The weights file exists and, when the card gives one, matches its checksum."""
    path = Path(path)
    if not path.is_file():
        raise DelineateError(f"{path}: weights file not found")
    if expected_sha256 and sha256(path) != expected_sha256:
        raise DelineateError(f"{path}: weights do not match the card's sha256 (changed or corrupted)")
    return path


def load_state(path: Path, expected_sha256: str = "") -> dict:
    path = verify(path, expected_sha256)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - the library raises several kinds
            raise DelineateError(f"{path}: not a valid safetensors file ({exc})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeWeightsError(
            f"{path}: refused: the checkpoint contains Python objects that would run code when "
            f"loaded (pickle payload), not only tensors. Convert it to safetensors with trusted "
            f"tools first. Detail: {str(exc).splitlines()[0]}") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise DelineateError(f"{path}: cannot read checkpoint ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DelineateError(f"{path}: expected a state dict of tensors")
    return state


def save_weights(module: torch.nn.Module, path: Path) -> str:
    """Write a module's weights as safetensors, atomically (tensors shared between submodules,
    as DynUNet's are, are stored once); returns the sha256 for the card."""
    from safetensors.torch import save_model

    from formats.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        save_model(module, str(tmp))
    return sha256(path)


def load_into(module: torch.nn.Module, path: Path, expected_sha256: str = "") -> None:
    """Fill ``module`` from safetensors or a weights-only checkpoint; every tensor must fit."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_model

        verify(path, expected_sha256)
        try:
            missing, unexpected = load_model(module, str(path), strict=False)
        except Exception as exc:  # noqa: BLE001 - shape mismatches, corrupt headers
            raise DelineateError(f"{path}: weights do not fit the network ({str(exc).splitlines()[0]})") from None
    else:
        missing, unexpected = module.load_state_dict(load_state(path, expected_sha256), strict=False)
    if missing or unexpected:
        raise DelineateError(f"{path}: weights do not fit the network (missing {list(missing)[:3]}, "
                             f"unexpected {list(unexpected)[:3]})")
