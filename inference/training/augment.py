"""Spatial and intensity randomisation shared by the generators (torch, CPU)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_warp(tensors: list[torch.Tensor], rng: torch.Generator, rotate_deg: float = 12.0,
                scale: float = 0.1, elastic_mm: float = 3.0, spacing: float = 2.0,
                modes: list[str] = None) -> list[torch.Tensor]:
    """One random affine + smooth elastic deformation applied to [C, Z, Y, X] tensors alike."""
    z, y, x = tensors[0].shape[1:]
    ang = [(torch.rand(1, generator=rng).item() * 2 - 1) * math.radians(rotate_deg) for _ in range(3)]
    s = 1 + (torch.rand(3, generator=rng) * 2 - 1) * scale
    cx, sx, cy, sy, cz, sz = (math.cos(ang[0]), math.sin(ang[0]), math.cos(ang[1]), math.sin(ang[1]),
                              math.cos(ang[2]), math.sin(ang[2]))
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    m = (rz @ ry @ rx) @ torch.diag(s)
    theta = torch.cat([m, (torch.rand(3, 1, generator=rng) * 2 - 1) * 0.05], dim=1)[None].float()
    grid = F.affine_grid(theta, [1, 1, z, y, x], align_corners=False)
    coarse = torch.randn(1, 3, 5, 5, 5, generator=rng) * (elastic_mm / spacing)
    disp = F.interpolate(coarse, size=(z, y, x), mode="trilinear", align_corners=False)
    norm = torch.tensor([x, y, z], dtype=torch.float32) / 2  # voxels -> grid_sample units
    grid = grid + (disp.permute(0, 2, 3, 4, 1) / norm)
    out = []
    for t, mode in zip(tensors, modes or ["bilinear"] * len(tensors)):
        out.append(F.grid_sample(t[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0])
    return out


def bias_field(shape, rng: torch.Generator, strength: float = 0.3) -> torch.Tensor:
    coarse = torch.randn(1, 1, 4, 4, 4, generator=rng) * strength
    return torch.exp(F.interpolate(coarse, size=tuple(shape), mode="trilinear", align_corners=False)[0, 0])


def random_resolution(img: torch.Tensor, rng: torch.Generator, max_factor: float = 2.5) -> torch.Tensor:
    """Blur/downsample along one random axis and back: thick-slice acquisitions."""
    f = 1 + torch.rand(1, generator=rng).item() * (max_factor - 1)
    axis = int(torch.randint(0, 3, (1,), generator=rng))
    size = list(img.shape[1:])
    small = size.copy()
    small[axis] = max(2, int(round(size[axis] / f)))
    low = F.interpolate(img[None], size=small, mode="trilinear", align_corners=False)
    return F.interpolate(low, size=size, mode="trilinear", align_corners=False)[0]


def random_crop(tensors: list[torch.Tensor], patch, rng: torch.Generator, focus=None) -> list[torch.Tensor]:
    """The same random crop (padded if needed) of [C, ...] tensors; ``focus`` biases to foreground."""
    shape = tensors[0].shape[1:]
    pads = []
    for s, p in zip(reversed(shape), reversed(patch)):
        extra = max(p - s, 0)
        pads += [extra // 2, extra - extra // 2]
    if any(pads):
        tensors = [F.pad(t, pads) for t in tensors]
        shape = tensors[0].shape[1:]
    starts = []
    for a, (s, p) in enumerate(zip(shape, patch)):
        starts.append(int(torch.randint(0, s - p + 1, (1,), generator=rng)))
    if focus is not None and torch.rand(1, generator=rng).item() < 0.7:
        idx = torch.nonzero(focus(tensors))
        if len(idx):
            c = idx[int(torch.randint(0, len(idx), (1,), generator=rng))]
            starts = [int(min(max(int(c[a]) - p // 2, 0), s - p)) for a, (s, p) in enumerate(zip(shape, patch))]
    sl = tuple(slice(st, st + p) for st, p in zip(starts, patch))
    return [t[(slice(None),) + sl] for t in tensors]
