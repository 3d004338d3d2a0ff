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
    return torch.bfloat16 if cpu_has_fast_bf16() else None


_FAST_BF16 = None


def cpu_has_fast_bf16() -> bool:
    """bf16 matrix units (Intel AMX / AVX512-BF16): there oneDNN runs bf16 convolutions several times
    faster than fp32 (measured 8x on a 3D U-Net). Elsewhere bf16 emulation is slower: keep fp32.
    DELINEATE_CPU_BF16=0/1 overrides."""
    global _FAST_BF16
    if _FAST_BF16 is None:
        import os

        env = os.environ.get("DELINEATE_CPU_BF16")
        if env in ("0", "1"):
            _FAST_BF16 = env == "1"
        else:
            try:
                with open("/proc/cpuinfo") as f:
                    flags = f.read()
                _FAST_BF16 = "amx_bf16" in flags or "avx512_bf16" in flags
            except OSError:
                _FAST_BF16 = False
    return _FAST_BF16
