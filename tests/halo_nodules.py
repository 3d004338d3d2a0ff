"""Ultrasound-like images that the shipped lesion model never saw: an isoechoic nodule whose only
sign is a thin hypoechoic halo (as thyroid nodules often show), on a coarse-grained background with
gamma-distributed speckle. Written for the retraining test; shares no code with the training
generator (inference/training/synth_us.py), so the retrained model is judged on what it was
corrected on, not on its own generator."""
import numpy as np
from scipy import ndimage


def halo_nodule(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image [rows, cols], nodule mask uint8)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    background = 110 + 75 * ndimage.uniform_filter(rng.standard_normal((size, size)), 9)
    cy, cx = rng.uniform(0.3, 0.7) * size, rng.uniform(0.28, 0.72) * size
    a, b, angle = rng.uniform(0.09, 0.17) * size, rng.uniform(0.08, 0.14) * size, rng.uniform(0, np.pi)
    u = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / a
    v = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / b
    r = np.hypot(u, v)
    nodule = r < 1.0
    img = background
    img[nodule] = 115 + 10 * rng.standard_normal(int(nodule.sum()))  # as bright as the tissue around it
    img[(r >= 0.85) & nodule] = 35  # the halo
    img = img * ndimage.gaussian_filter(rng.gamma(2.0, 0.5, (size, size)), (1.0, 0.7))
    return np.clip(img, 0, 255).astype(np.uint8), nodule.astype(np.uint8)
