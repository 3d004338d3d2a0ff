"""Where a model runs: CUDA, then Apple MPS, then the CPU, unless the user says otherwise."""
from __future__ import annotations

from typing import Optional

import torch

from core.errors import DelineateError


def pick(preference: Optional[str] = None) -> torch.device:
    if preference in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise DelineateError("CUDA was requested but no CUDA GPU is usable (is the CUDA build of torch installed?)")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DelineateError("MPS was requested but this is not an Apple-silicon build of torch")
    if preference not in ("cpu", "cuda", "mps"):
        raise DelineateError(f"unknown device '{preference}': use cpu, cuda or mps")
    return torch.device(preference)


def autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    """Mixed precision where it is safe and fast: fp16 on CUDA/MPS, bf16 on CPUs that have it."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None  # set by the runner after a quick check that bf16 is faster on this CPU
