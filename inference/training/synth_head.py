"""Brain MRI tissue training data for the next brain model (recipe_brain.brain_head): the MNI152
template's brain (nilearn) inside a synthesised head.

Each sample warps the template's brain (tilts up to 30 deg, scale, elastic, left-right flip), wraps it
in generated layers - extra-cerebral CSF, skull (dark inner and outer tables around brighter marrow)
and scalp (muscle, fat, skin) - of random, spatially varying thickness, and draws the contrast either
from the template's own T1 (its brain; the head in T1-like intensities) or SynthSeg-style from random
intensities per generation label, in T1-, T2- and FLAIR-like orders or in any order. Then partial
volume blur, thick slices (up to 5 mm), a cut field of view, bias field, gamma and Rician noise.
Only CSF, grey and white matter inside the template's brain mask are labelled; everything the head
adds (extra-cerebral CSF, skull, scalp) is background: the model has to learn where the brain ends."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.geometry import Geometry
from core.resample import covering_grid, resample
from inference.runner import normalise
from inference.training.augment import bias_field, random_resolution, random_warp
from inference.training.synth_brain import LABELS, NORMALISATION, template_labels

PAD_VOXELS = 6  # the template box leaves ~26 mm around the brain; a little more room for the scalp
# generation labels: 0 air, 1-3 the brain's, then what the head adds (all background to the model)
AIR, CSF, GM, WM, RIM, BONE, MARROW, MUSCLE, FAT, SKIN = range(10)
HEAD_LAYERS = (RIM, BONE, MARROW, BONE, MUSCLE, FAT, SKIN)  # outward from the brain mask


@dataclass(frozen=True)
class Ranges:
    """What a sample may look like; IN_RANGE is training's, OUT_OF_RANGE the card's stress set."""
    rotate_deg: float = 30.0
    scale: float = 0.12
    slice_factor: tuple = (1.0, 2.5)  # thick-slice blur along one axis, x the 2 mm grid: 2-5 mm
    noise: tuple = (0.0, 0.05)  # Rician sigma, fraction of the brightest tissue
    bias: float = 0.3
    min_contrast: float = 0.12  # grey/white/CSF means at least this far apart
    gap: tuple | None = None  # grey-white difference forced into this range (low-contrast images)
    template: float = 0.5  # share of samples with the template's own T1 contrast
    head: float = 0.75  # share of samples with a head around the brain (else skull-stripped)
    cut_fov: float = 0.25


IN_RANGE = Ranges()
# thicker slices (6-7 mm), stronger scaling and tilt, more noise and bias, low-contrast tissue
# (grey/white 0.05-0.1 apart), always a head and never the template's contrast
OUT_OF_RANGE = Ranges(rotate_deg=45.0, scale=0.22, slice_factor=(3.0, 3.5), noise=(0.06, 0.1), bias=0.5,
                      min_contrast=0.05, gap=(0.05, 0.1), template=0.0, head=1.0, cut_fov=0.0)


def _template():
    """(T1 volume, grey and white matter probabilities 0-1, brain mask) on the template's grid, the
    mask as synth_brain.template_labels draws it."""
    from scipy import ndimage

    from formats import samples
    from formats.io import read_image

    t1 = read_image(samples.path("mni152-t1"))
    gm = read_image(samples.path("mni152-gm")).array.astype(np.float32)
    wm = read_image(samples.path("mni152-wm")).array.astype(np.float32)
    scale = 1.0 / max(float(gm.max()), float(wm.max()), 1e-6)
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(t1.array > 0.05 * t1.array.max(), iterations=2))
    return t1, gm * scale, wm * scale, mask


def _draw(rng, lo, hi):
    return lo + torch.rand(1, generator=rng).item() * (hi - lo)


class BrainData:
    """Template resampled once onto a padded model grid (LPS-aligned, as the runner feeds the model),
    with the distance outside its brain mask for the head's layers."""

    def __init__(self, spacing: float = 2.0) -> None:
        from scipy import ndimage

        t1, gm, wm, mask = _template()
        labels = template_labels()[1]
        g = covering_grid(t1.geometry, [spacing] * 3)
        origin = np.asarray(g.origin) - PAD_VOXELS * spacing
        self.grid = Geometry(tuple(s + 2 * PAD_VOXELS for s in g.size), g.spacing, origin, np.eye(3))
        self.spacing = spacing

        def on_grid(a, order=1):
            return resample(a.astype(np.float32), t1.geometry, self.grid, order=order)

        self.image = on_grid(t1.array) / max(float(t1.array.max()), 1e-6)
        onehot = [on_grid((labels == v).astype(np.float32)) for v in range(4)]
        self.labels = np.argmax(np.stack(onehot), 0).astype(np.uint8)
        inside = self.labels > 0
        # partial-volume tissue fractions for synthetic contrasts (CSF = brain minus grey and white)
        self.gm, self.wm, self.brain = on_grid(gm), on_grid(wm), on_grid(mask.astype(np.float32))
        self.outside_mm = ndimage.distance_transform_edt(~inside, sampling=spacing).astype(np.float32)

    def sample(self, rng: torch.Generator, ranges: Ranges = IN_RANGE,
               contrast: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One randomised (normalised image [Z, Y, X], labels [Z, Y, X]) pair on the model grid.
        ``contrast``: template, t1, t2, flair or random (default: drawn as ``ranges`` says)."""
        r = ranges
        far = 100.0  # warped as far - distance, so the zero padding of the warp reads as far away
        chans = torch.from_numpy(np.stack([self.image, self.gm, self.wm, self.brain, far - self.outside_mm]))
        labs = torch.from_numpy(self.labels)[None].float()
        chans, labs = random_warp([chans, labs], rng, rotate_deg=r.rotate_deg, scale=r.scale,
                                  spacing=self.spacing, modes=["bilinear", "nearest"])
        if torch.rand(1, generator=rng).item() < 0.5:  # left-right
            chans, labs = chans.flip(-1), labs.flip(-1)
        image, gm, wm, brain, dist = chans[0], chans[1], chans[2], chans[3], far - chans[4]
        labels = labs[0].round().long()
        gen = labels.clone()
        if torch.rand(1, generator=rng).item() < r.head:
            gen = self._head(gen, dist, rng)
        if contrast is None:
            contrast = "template" if torch.rand(1, generator=rng).item() < r.template else _contrast(rng)
        template = contrast == "template"
        means, stds = _means(rng, contrast, r.min_contrast)
        if r.gap is not None:
            sign = 1.0 if means[WM] >= means[GM] else -1.0
            means[WM] = (means[GM] + sign * _draw(rng, *r.gap)).clamp(min=0)
        x = means[gen] + torch.randn(gen.shape, generator=rng) * stds[gen]
        if template:  # the template's own brain, the head drawn around it
            x = torch.where(labels > 0, image + torch.randn(gen.shape, generator=rng) * stds[1], x)
        else:  # partial volume inside the brain from the tissue maps
            csf = (brain - gm - wm).clamp(min=0)
            mix = csf * means[CSF] + gm * means[GM] + wm * means[WM]
            x = torch.where(labels > 0, mix / (csf + gm + wm).clamp(min=1e-3)
                            + torch.randn(gen.shape, generator=rng) * stds[labels], x)
        x = _blur(x, _draw(rng, 0.2, 0.8))[None]
        if torch.rand(1, generator=rng).item() < 0.6:
            x = random_resolution(x, rng, max_factor=_draw(rng, *r.slice_factor))
        x = x[0].clamp(min=0) * bias_field(labels.shape, rng, strength=r.bias)
        x = x ** float(torch.exp(torch.randn(1, generator=rng) * 0.2))
        sigma = _draw(rng, *r.noise) * float(means[1:4].max())
        x = torch.sqrt((x + torch.randn(x.shape, generator=rng) * sigma) ** 2
                       + (torch.randn(x.shape, generator=rng) * sigma) ** 2)
        if torch.rand(1, generator=rng).item() < r.cut_fov:
            x, labels = _cut(x, labels, rng)
        return normalise(x.numpy(), NORMALISATION), labels.numpy().astype(np.uint8)

    def _head(self, gen: torch.Tensor, dist: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """Layers outward from the brain mask, each of random thickness that varies over the head."""
        thick = {RIM: (0.5, 4.0), BONE: (0.8, 2.5), MARROW: (0.0, 5.0), MUSCLE: (0.0, 4.0),
                 FAT: (1.0, 7.0), SKIN: (1.0, 3.0)}
        edge = torch.zeros_like(dist)
        out = gen.clone()
        outside = gen == 0
        for layer in HEAD_LAYERS:
            t = _draw(rng, *thick[layer]) * _smooth_field(dist.shape, rng, 0.4)
            inner, edge = edge, edge + t
            out[outside & (dist > inner) & (dist <= edge)] = layer
        return out

    def case(self, rng: torch.Generator, ranges: Ranges = IN_RANGE, contrast: str | None = None):
        """A held-out case as the runner sees a user's image (on the padded 2 mm grid)."""
        from inference.training.train import volume_case

        return volume_case(*self.sample(rng, ranges, contrast), self.grid, LABELS, "MR")


def _contrast(rng: torch.Generator) -> str:
    u = torch.rand(1, generator=rng).item()
    return "t1" if u < 0.25 else "t2" if u < 0.5 else "flair" if u < 0.67 else "random"


def _means(rng: torch.Generator, kind: str, min_contrast: float):
    """Per generation label mean and spread, in the order the kind of contrast has."""
    def u(lo, hi):
        return _draw(rng, lo, hi)

    m = torch.zeros(10)
    if kind == "random":
        while True:  # any order, but the tissues must stay distinguishable
            m = torch.rand(10, generator=rng)
            m[AIR] *= 0.3
            b = m[1:4]
            if (b[:, None] - b[None, :]).abs().add(torch.eye(3)).min() >= min_contrast:
                break
        if torch.rand(1, generator=rng).item() < 0.8:
            m[RIM] = m[CSF]  # the same fluid, mostly
    else:
        c = min_contrast
        if kind in ("t1", "template"):  # template: its own brain, T1-like head around it
            m[CSF], m[GM] = u(0.05, 0.3), u(0.4, 0.6)
            m[WM] = u(min(m[GM] + c, 0.95), 0.95)
            m[MARROW], m[MUSCLE], m[FAT], m[SKIN] = u(0.35, 0.9), u(0.2, 0.45), u(0.7, 1.0), u(0.3, 0.65)
            if kind == "template":
                m[CSF] = u(0.25, 0.45)
        elif kind == "t2":
            m[CSF], m[WM] = u(0.75, 1.0), u(0.15, 0.4)
            m[GM] = u(m[WM] + c, min(m[WM] + c + 0.3, 0.7))
            m[MARROW], m[MUSCLE], m[FAT], m[SKIN] = u(0.3, 0.7), u(0.1, 0.3), u(0.5, 0.9), u(0.3, 0.6)
        else:  # flair: dark fluid, grey above white
            m[CSF], m[WM] = u(0.0, 0.15), u(0.25, 0.5)
            m[GM] = u(m[WM] + c, min(m[WM] + c + 0.3, 0.85))
            m[MARROW], m[MUSCLE], m[FAT], m[SKIN] = u(0.3, 0.7), u(0.15, 0.35), u(0.6, 1.0), u(0.3, 0.6)
        m[AIR], m[BONE] = u(0.0, 0.05), u(0.0, 0.1)
        m[RIM] = m[CSF] + u(-0.05, 0.05)
    stds = 0.005 + torch.rand(10, generator=rng) * 0.05
    return m.clamp(min=0), stds


def _smooth_field(shape, rng: torch.Generator, strength: float) -> torch.Tensor:
    coarse = torch.randn(1, 1, 4, 4, 4, generator=rng) * strength
    return torch.exp(F.interpolate(coarse, size=tuple(shape), mode="trilinear", align_corners=False)[0, 0])


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Partial volume: a separable Gaussian of ``sigma`` voxels."""
    k = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    y = x[None, None]
    for dim in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = 5
        pad = [0] * 6
        pad[2 * (2 - dim)], pad[2 * (2 - dim) + 1] = 2, 2
        y = F.conv3d(F.pad(y, pad, mode="replicate"), k.view(shape))
    return y[0, 0]


def _cut(x: torch.Tensor, labels: torch.Tensor, rng: torch.Generator):
    """A field of view that stops inside the head: beyond a plane there is no image and no label."""
    axis = int(torch.randint(0, 3, (1,), generator=rng))
    n = x.shape[axis]
    k = int(n * _draw(rng, 0.15, 0.4))
    idx = [slice(None)] * 3
    idx[axis] = slice(0, k) if torch.rand(1, generator=rng).item() < 0.5 else slice(n - k, n)
    x, labels = x.clone(), labels.clone()
    x[tuple(idx)] = 0
    labels[tuple(idx)] = 0
    return x, labels
