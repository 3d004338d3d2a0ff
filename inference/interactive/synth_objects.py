"""Generated training scenes for the promptable network: one target object among distractors
on a textured background (the SynthSeg idea applied to objects, not anatomy).

Shapes are random: lumpy blobs (an ellipsoid level set perturbed by smooth noise), unions of
ellipsoids, curved tubes, shells, and pieces of thresholded smooth noise. Intensities, textures,
contrast, noise (Gaussian or speckle), blur, slice thickness, bias field and gamma are random too,
so the network must find the object from the prompts, never from what it looks like.
No anatomy, no organ phantom, no template brain and no ultrasound lesion model is used here: those
are the benchmark's held-out objects.

Scenes are made on the network's grid (isotropic voxels, as the engine resamples its region of
interest); a shape with depth 1 gives a 2D scene (then repeated into a slab by the trainer).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class Scene:
    image: np.ndarray   # float32 (z, y, x), arbitrary units (normalise before use)
    target: np.ndarray  # bool (z, y, x), the object to segment (one connected piece)


def smooth_noise(shape, sigma, rng) -> np.ndarray:
    """Gaussian noise smoothed at ``sigma`` voxels, rescaled to unit standard deviation."""
    f = int(max(1, sigma // 3))  # wide kernels: smooth a coarser grid and interpolate (same look, faster)
    small = tuple(n if n == 1 or f == 1 else -(-n // f) + 1 for n in shape)
    sig = [0 if n == 1 else sigma / f for n in small]
    g = ndi.gaussian_filter(rng.standard_normal(small).astype(np.float32), sig, mode="wrap", truncate=3.0)
    if f > 1:
        g = ndi.zoom(g, [1 if n == 1 else f for n in small], order=1)
        g = g[tuple(slice(0, n) for n in shape)]
    return g / (g.std() + 1e-6)


def _rotation(rng, flat: bool) -> np.ndarray:
    if flat:  # 2D: rotate in-plane only
        a = rng.uniform(0, 2 * np.pi)
        return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _coords(shape, centre, rot) -> np.ndarray:
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) - c for n, c in zip(shape, centre)], indexing="ij")
    pts = np.stack([zz, yy, xx], axis=-1)
    return pts @ rot.astype(np.float32)


def _ellipsoid_level(shape, centre, radii, rot) -> np.ndarray:
    """1 at the centre, 0 on the surface, negative outside."""
    p = _coords(shape, centre, rot)
    r = np.asarray(radii, np.float32)
    return 1.0 - np.sqrt(((p / r) ** 2).sum(-1))


def _radii(rng, shape, lo, hi) -> np.ndarray:
    r = np.exp(rng.uniform(np.log(lo), np.log(hi), 3))
    if shape[0] == 1:
        r[0] = 1e3  # a 2D shape is a cross-section
    return r


def _centre(rng, shape, margin=0.15) -> np.ndarray:
    return np.array([(n - 1) / 2 if n == 1 else rng.uniform(margin * n, (1 - margin) * n) for n in shape])


def blob(shape, rng, centre=None, scale=None) -> np.ndarray:
    """An ellipsoid made lumpy by smooth noise (sizes from a few voxels to larger than the grid)."""
    n = max(shape)
    centre = _centre(rng, shape) if centre is None else centre
    hi = scale if scale is not None else rng.choice([0.12, 0.25, 0.45, 0.7], p=[0.3, 0.35, 0.25, 0.1]) * n
    r = _radii(rng, shape, max(2.0, 0.35 * hi), max(2.5, hi))
    level = _ellipsoid_level(shape, centre, r, _rotation(rng, shape[0] == 1))
    amp = rng.uniform(0.0, 0.5)
    if amp > 0.02:
        level = level + amp * smooth_noise(shape, rng.uniform(0.15, 0.5) * float(np.min(r[r < 1e3])) + 1, rng)
    return level > 0


def ellipsoids(shape, rng) -> np.ndarray:
    """A lobulated object: the union of 2-4 overlapping ellipsoids."""
    centre = _centre(rng, shape, 0.25)
    n = max(shape)
    scale = rng.uniform(0.1, 0.35) * n
    out = np.zeros(shape, bool)
    rot = _rotation(rng, shape[0] == 1)
    for _ in range(rng.integers(2, 5)):
        off = rng.normal(0, scale * 0.6, 3)
        if shape[0] == 1:
            off[0] = 0
        out |= _ellipsoid_level(shape, centre + off, _radii(rng, shape, 0.3 * scale, scale), rot) > 0
    return out


def tube(shape, rng) -> np.ndarray:
    """A curved tube (vessel-, bowel- or duct-like) of varying radius along a smooth random path."""
    flat = shape[0] == 1
    n = max(shape)
    steps = int(rng.integers(3, 8))
    pts = [_centre(rng, shape, 0.1)]
    d = rng.standard_normal(3)
    for _ in range(steps):
        d = d + rng.normal(0, 0.6, 3)
        if flat:
            d[0] = 0
        d = d / (np.linalg.norm(d) + 1e-6)
        pts.append(pts[-1] + d * rng.uniform(0.08, 0.2) * n)
    pts = np.array(pts)
    t = np.linspace(0, len(pts) - 1, 8 * len(pts))
    path = np.stack([np.interp(t, np.arange(len(pts)), pts[:, a]) for a in range(3)], 1)
    r0, r1 = rng.uniform(1.2, 0.08 * n), rng.uniform(1.2, 0.08 * n)
    seeds = np.zeros(shape, bool)
    radius = np.full(shape, np.inf, np.float32)
    for s, c in enumerate(path):
        k = tuple(int(np.clip(np.rint(v), 0, m - 1)) for v, m in zip(c, shape))
        seeds[k] = True
        radius[k] = r0 + (r1 - r0) * s / len(path)
    dist, (iz, iy, ix) = ndi.distance_transform_edt(~seeds, return_indices=True)
    return dist <= radius[iz, iy, ix]


def shell(shape, rng) -> np.ndarray:
    """A hollow ellipsoid (a wall around a cavity), sometimes opened on one side."""
    n = max(shape)
    centre = _centre(rng, shape, 0.3)
    r = _radii(rng, shape, 0.12 * n, 0.35 * n)
    rot = _rotation(rng, shape[0] == 1)
    level = _ellipsoid_level(shape, centre, r, rot)
    rmin = float(np.min(r[r < 1e3]))
    thick = rng.uniform(1.5, max(1.6, 0.3 * rmin)) / rmin
    out = (level > 0) & (level < thick)
    if rng.random() < 0.4:
        p = _coords(shape, centre, rot)
        out &= p[..., 2] < rng.uniform(0, 0.8) * r[2]
    return out


def noise_piece(shape, rng) -> np.ndarray:
    """A piece of thresholded smooth noise (irregular, branching, of any size)."""
    field = smooth_noise(shape, rng.uniform(0.05, 0.15) * max(shape), rng)
    return field > rng.uniform(0.5, 1.5)


SHAPES = (blob, blob, ellipsoids, tube, shell, noise_piece)


def _one_piece(mask: np.ndarray, rng) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (int(np.argmax(sizes)) + 1 if rng.random() < 0.8 else int(rng.integers(1, n + 1)))


def target_shape(shape, rng, min_voxels: int = 12) -> np.ndarray:
    for _ in range(20):
        m = _one_piece(SHAPES[int(rng.integers(len(SHAPES)))](shape, rng), rng)
        if m.sum() >= (min_voxels if shape[0] > 1 else max(4, min_voxels // 3)):
            return m
    return blob(shape, rng, centre=np.array(shape) / 2.0, scale=0.3 * max(shape))


def _labels(shape, rng) -> np.ndarray:
    """A random background partition: argmax of smooth noise fields (tissue-like regions)."""
    k = int(rng.integers(2, 6))
    sig = rng.uniform(0.05, 0.25) * max(shape)
    fields = np.stack([smooth_noise(shape, sig, rng) for _ in range(k)])
    return np.argmax(fields, 0)


def _means(k, rng) -> np.ndarray:
    return rng.uniform(0, 1, k).astype(np.float32)


def scene(shape, rng) -> Scene:
    """One generated scene: a target among 0-4 distractors on a partitioned background."""
    shape = tuple(int(s) for s in shape)
    flat = shape[0] == 1
    target = target_shape(shape, rng)
    labels = _labels(shape, rng)
    k = int(labels.max()) + 1
    means = _means(k + 5, rng)
    tmean = float(rng.uniform(0, 1))
    # the target differs from what surrounds it by at least a visible step
    near = ndi.binary_dilation(target, iterations=2) & ~target
    around = float(np.median(means[labels[near]])) if near.any() else float(means[0])
    contrast = rng.uniform(0.15, 0.6) * (1 if rng.random() < 0.5 else -1)
    tmean = float(np.clip(around + contrast, -0.2, 1.2)) if abs(tmean - around) < 0.15 else tmean
    img = means[labels]
    tex = rng.uniform(0, 0.15)
    if tex > 0.01:
        img = img + tex * smooth_noise(shape, rng.uniform(0.6, 3.0), rng)
    # distractors: other objects, some touching the target, some of the same brightness
    ids = np.zeros(shape, np.int8)
    for d in range(int(rng.integers(0, 5))):
        m = target_shape(shape, rng, 6) & ~target
        if rng.random() < 0.3:
            m &= ~ndi.binary_dilation(target, iterations=int(rng.integers(1, 3)))
        ids[m] = d + 1
        dm = tmean + rng.normal(0, 0.05) if rng.random() < 0.25 else float(rng.uniform(0, 1))
        img = np.where(m, dm, img)
    # the target: its brightness, sometimes an inner gradient or texture of its own
    inner = tmean + (rng.uniform(0, 0.12) * smooth_noise(shape, rng.uniform(0.8, 4), rng)
                     if rng.random() < 0.5 else 0.0)
    img = np.where(target, inner, img).astype(np.float32)
    # partial volume / slice thickness: blur, one axis more than the others
    sig = np.full(3, rng.uniform(0, 1.2))
    if not flat and rng.random() < 0.4:
        sig[int(rng.integers(3))] = rng.uniform(1.0, 3.0)
    if flat:
        sig[0] = 0
    if sig.max() > 0.1:
        img = ndi.gaussian_filter(img, sig, mode="nearest")
    if not flat and rng.random() < 0.25:  # thick slices: sample every f-th slice, interpolate back
        ax, f = int(rng.integers(3)), int(rng.integers(2, 5))
        idx = np.arange(0, shape[ax], f)
        coarse = np.take(img, idx, axis=ax)
        img = ndi.zoom(coarse, [shape[ax] / coarse.shape[ax] if a == ax else 1 for a in range(3)], order=1,
                       mode="nearest")
        img = _fit(img, shape)
    # bias field, gamma, noise (Gaussian, or multiplicative speckle as in ultrasound)
    if rng.random() < 0.6:
        img = img * np.exp(rng.uniform(0.1, 0.5) * smooth_noise(shape, 0.4 * max(shape), rng))
    img = img - img.min()
    img = img / (img.max() + 1e-6)
    img = img ** np.float32(np.exp(rng.uniform(-0.5, 0.5)))
    if rng.random() < 0.25:
        speckle = ndi.gaussian_filter(rng.gamma(rng.uniform(3, 12), size=shape).astype(np.float32),
                                      [0 if flat else 0.7, 0.7, 0.7])
        img = img * speckle / speckle.mean()
    else:
        img = img + rng.uniform(0, 0.08) * rng.standard_normal(shape).astype(np.float32)
    scale = np.float32(np.exp(rng.uniform(-2, 7)))  # arbitrary units: normalisation must cope
    return Scene((img * scale + np.float32(rng.normal(0, 100))).astype(np.float32), target)


def _fit(a: np.ndarray, shape) -> np.ndarray:
    out = np.empty(shape, a.dtype)
    sl = tuple(slice(0, min(m, n)) for m, n in zip(a.shape, shape))
    out[...] = np.pad(a[sl], [(0, n - min(m, n)) for m, n in zip(a.shape, shape)], mode="edge")
    return out
