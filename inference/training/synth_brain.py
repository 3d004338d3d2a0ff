"""Brain MRI tissue training data from the MNI152 template and its tissue maps (nilearn), with
SynthSeg-style randomisation: every sample is warped (affine + elastic), and its contrast is either
the template's T1 or drawn at random per tissue (so the model does not learn one scanner's
contrast), then bias field, blur/thick slices, noise and gamma are applied."""
from __future__ import annotations

import numpy as np
import torch

from core.geometry import Geometry
from core.labels import Label, LabelTable
from core.resample import covering_grid, resample
from inference.runner import normalise
from inference.training.augment import bias_field, random_resolution, random_warp

NORMALISATION = {"kind": "zscore", "foreground": False}  # the card's: train and inference must agree
LABELS = LabelTable((Label(1, "CSF", (120, 190, 255)), Label(2, "Grey matter", (230, 160, 60)),
                     Label(3, "White matter", (80, 200, 120))))


def template_labels(threshold: float = 0.5):
    """(T1 volume, label array on its grid): GM/WM from the probability maps, CSF = the rest of
    the brain mask (ventricles, sulci, cisterns)."""
    from scipy import ndimage

    from formats import samples
    from formats.io import read_image

    t1 = read_image(samples.path("mni152-t1"))
    gm = read_image(samples.path("mni152-gm")).array.astype(np.float32)
    wm = read_image(samples.path("mni152-wm")).array.astype(np.float32)
    scale = 1.0 / max(float(gm.max()), float(wm.max()), 1e-6)
    gm, wm = gm * scale, wm * scale
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(t1.array > 0.05 * t1.array.max(), iterations=2))
    labels = np.zeros(gm.shape, np.uint8)
    labels[mask] = 1
    labels[(gm > threshold) & (gm >= wm)] = 2
    labels[(wm > threshold) & (wm > gm)] = 3
    return t1, labels


class BrainData:
    """Template resampled once onto the model grid (LPS-aligned, as the runner feeds the model)."""

    def __init__(self, spacing: float = 2.0) -> None:
        t1, labels = template_labels()
        self.grid: Geometry = covering_grid(t1.geometry, [spacing] * 3)
        self.spacing = spacing
        self.image = resample(t1.array.astype(np.float32), t1.geometry, self.grid, order=1)
        onehot = [resample((labels == v).astype(np.float32), t1.geometry, self.grid, order=1) for v in range(4)]
        self.labels = np.argmax(np.stack(onehot), 0).astype(np.uint8)
        self.label_tensor = torch.from_numpy(self.labels)[None].float()

    def sample(self, rng: torch.Generator, synthetic: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """One randomised (normalised image [Z, Y, X], labels [Z, Y, X]) pair on the model grid."""
        img = torch.from_numpy(self.image)[None]
        img_w, lab_w = random_warp([img, self.label_tensor], rng, spacing=self.spacing, modes=["bilinear", "nearest"])
        labels = lab_w[0].round().long()
        if torch.rand(1, generator=rng).item() < synthetic:
            while True:  # random contrast, but tissues must stay distinguishable (>= 0.12 apart)
                means = torch.rand(4, generator=rng)
                means[0] = means[0] * 0.3  # background darker than tissue, mostly
                if (means[1:, None] - means[None, 1:]).abs().add(torch.eye(3)).min() >= 0.12:
                    break
            stds = 0.01 + torch.rand(4, generator=rng) * 0.08
            x = means[labels] + torch.randn(labels.shape, generator=rng) * stds[labels]
            x = x[None]
        else:
            x = img_w / max(float(self.image.max()), 1e-6)
        x = random_resolution(x, rng) if torch.rand(1, generator=rng).item() < 0.5 else x
        x = x[0] * bias_field(labels.shape, rng)
        x = x.clamp(min=0) ** float(torch.exp(torch.randn(1, generator=rng) * 0.25))
        x = x + torch.randn(x.shape, generator=rng) * float(torch.rand(1, generator=rng) * 0.05)
        return normalise(x.numpy(), NORMALISATION), labels.numpy().astype(np.uint8)
