"""B-mode ultrasound-like 2D images with lesion-like regions: layered tissue echogenicity,
hypo- or hyperechoic lesions with posterior enhancement or shadowing, multiplicative Rayleigh
speckle, depth attenuation with time-gain compensation, log compression."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from typing import Optional

from core.labels import Label, LabelTable

LABELS = LabelTable((Label(1, "Lesion", (255, 80, 80)),))


def image(rng: np.random.Generator, size: int = 128, posterior: bool = True,
          hyperechoic: Optional[bool] = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 B-mode image [rows, cols], lesion mask uint8). ``posterior=False``: no enhancement or
    shadow below lesions, so the lesion is the only thing that distinguishes it (saliency tests)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    echo = np.ones((size, size), np.float32) * rng.uniform(0.4, 0.7)
    for _ in range(rng.integers(2, 5)):  # tissue layers, roughly horizontal
        depth, tilt = rng.uniform(0, size), rng.uniform(-0.3, 0.3)
        echo[yy > depth + tilt * (xx - size / 2)] *= rng.uniform(0.6, 1.5)
    echo *= 1 + 0.3 * ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 6)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, 3)):
        cy, cx = rng.uniform(0.25, 0.8) * size, rng.uniform(0.2, 0.8) * size
        ry, rx = rng.uniform(0.05, 0.16) * size, rng.uniform(0.06, 0.2) * size
        ang = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
        v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
        wobble = 1 + 0.15 * np.sin(rng.integers(2, 6) * np.arctan2(v, u) + rng.uniform(0, 6))
        inside = (u / rx) ** 2 + (v / ry) ** 2 < wobble ** 2
        mask[inside] = 1
        hypo = rng.random() < 0.8 if hyperechoic is None else (rng.random() < 2 and not hyperechoic)
        echo[inside] *= rng.uniform(0.1, 0.45) if hypo else rng.uniform(1.6, 2.2)
        below = (yy > cy) & (np.abs(u) < rx * 0.9)  # posterior enhancement (cyst) or shadow (solid)
        factor = rng.uniform(1.1, 1.4) if rng.random() < 0.6 else rng.uniform(0.5, 0.85)
        if posterior:
            echo[below] *= factor
    speckle = rng.rayleigh(1.0, (size, size)).astype(np.float32)
    speckle = ndimage.gaussian_filter(speckle, (0.6, 1.2))  # axial < lateral resolution
    signal = echo * speckle * np.exp(-rng.uniform(0.005, 0.02) * yy) * (1 + rng.uniform(0, 0.01) * yy)
    b = 20 * np.log10(signal + 1e-3)
    b = (b - b.max() + rng.uniform(45, 60)) / rng.uniform(45, 60)
    out = np.clip(b * 255 + rng.normal(0, 3, b.shape), 0, 255).astype(np.uint8)
    return out, mask
