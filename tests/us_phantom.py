"""Ultrasound-like test images written apart from the training generator
(inference/training/synth_us.py): they share no code, and differ in what they draw. A square
field of view of 40-60 mm imaged at any pixel count (128-1024 px), so the image carries its real
pixel size. Skin and a fat layer with lobules over muscle-like striated tissue; one lesion that is
lobulated (overlapping discs), a rounded rectangle or a smoothed polygon, 6-18 mm across, hypo-
echoic, anechoic (a cyst, with enhancement behind it) or hyperechoic; speckle as gamma-distributed
intensity on cells of 0.15-0.35 mm, blurred by a Gaussian beam; exponential attenuation with a
linear gain ramp; log or power-law display mapping."""
import numpy as np
from scipy import ndimage


def _lesion(rng, ys, xs, cy, cx, diameter):
    shape = rng.choice(["discs", "box", "polygon"])
    if shape == "discs":
        inside = np.zeros(ys.shape, bool)
        for _ in range(rng.integers(2, 5)):
            r = diameter / 2 * rng.uniform(0.55, 0.8)
            oy, ox = rng.uniform(-1, 1, 2) * (diameter / 2 - r)
            inside |= (ys - cy - oy) ** 2 + (xs - cx - ox) ** 2 < r ** 2
        return inside
    ang = rng.uniform(0, np.pi)
    u = (xs - cx) * np.cos(ang) + (ys - cy) * np.sin(ang)
    v = (ys - cy) * np.cos(ang) - (xs - cx) * np.sin(ang)
    if shape == "box":  # superellipse: a rounded rectangle
        a, b, p = diameter / 2, diameter / 2 * rng.uniform(0.55, 0.9), rng.uniform(3, 5)
        return np.abs(u / a) ** p + np.abs(v / b) ** p < 1
    k = rng.integers(5, 9)  # polygon with random vertex radii, its outline smoothed by interpolation
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = diameter / 2 * rng.uniform(0.65, 1.0, k)
    t = np.mod(np.arctan2(v, u), 2 * np.pi)
    ring = np.interp(t, np.concatenate([angles - 2 * np.pi, angles, angles + 2 * np.pi]), np.tile(radii, 3))
    return np.hypot(u, v) < ring


def phantom(rng: np.random.Generator, size: int, fov_mm=None, kind=None):
    """(uint8 image [size, size], lesion mask uint8, pixel size mm). ``kind``: "hypo", "cyst",
    "hyper" or None (random)."""
    fov = float(fov_mm or rng.uniform(40, 60))
    px = fov / size
    c = (np.arange(size) + 0.5) * px
    ys, xs = np.meshgrid(c, c, indexing="ij")  # mm; ys is depth
    tissue = np.ones((size, size))
    skin = rng.uniform(1.5, 3)
    fat = skin + rng.uniform(4, 9)
    tissue[ys < skin] = rng.uniform(2.0, 3.0)
    band = (ys >= skin) & (ys < fat)
    tissue[band] = rng.uniform(0.45, 0.7)
    for _ in range(rng.integers(3, 8)):  # fat lobules with bright septa around them
        ly, lx, lr = rng.uniform(skin, fat), rng.uniform(0, fov), rng.uniform(1.5, 4)
        d = np.hypot((ys - ly) * 1.8, xs - lx)
        tissue[band & (np.abs(d - lr) < 0.3)] = 1.6
    stripe_angle = rng.uniform(-0.25, 0.25)
    stripes = np.sin((ys * np.cos(stripe_angle) + xs * np.sin(stripe_angle)) * 2 * np.pi / rng.uniform(2, 4))
    deep = ys >= fat
    tissue[deep] = rng.uniform(0.8, 1.2) * (1 + 0.15 * stripes[deep])
    kind = kind or rng.choice(["hypo", "cyst", "hyper"], p=[0.45, 0.2, 0.35])
    diameter = rng.uniform(6, 18)
    cy = rng.uniform(max(fat + diameter / 2 + 1, 0.3 * fov), 0.72 * fov)
    cx = rng.uniform(0.25, 0.75) * fov
    lesion = _lesion(rng, ys, xs, cy, cx, diameter)
    factor = {"hypo": rng.uniform(0.05, 0.25), "cyst": 0.02, "hyper": rng.uniform(4, 10)}[kind]
    tissue[lesion] = np.median(tissue[deep]) * factor
    behind = (ys > cy) & (np.abs(xs - cx) < diameter * 0.4) & ~lesion
    if kind == "cyst":
        tissue[behind] *= rng.uniform(1.3, 1.8)
    elif rng.random() < 0.4:
        tissue[behind] *= rng.uniform(0.4, 0.75)
    cell = rng.uniform(0.15, 0.35)  # speckle: gamma intensity on cells of `cell` mm, blurred by the beam
    n = int(np.ceil(fov / cell)) + 2
    m = rng.uniform(0.8, 1.5)
    grains = rng.gamma(m, 1 / m, (n, n))
    idx = c / cell
    speckle = ndimage.map_coordinates(grains, np.meshgrid(idx, idx, indexing="ij"), order=1)
    beam = (rng.uniform(0.1, 0.25) / px, rng.uniform(0.2, 0.5) / px)
    intensity = ndimage.gaussian_filter(tissue * speckle, beam)
    atten = rng.uniform(0.3, 1.0)  # dB/mm, round trip
    ramp = rng.uniform(0.6, 1.0) * atten  # gain ramp, dB/mm
    intensity = intensity * 10 ** ((ramp - atten) * ys / 10) * 10 ** (rng.uniform(-3, 3) / 10)
    intensity = intensity + rng.uniform(1e-4, 1e-3)  # electronic noise floor
    ref = np.percentile(intensity, 99)
    if rng.random() < 0.5:
        dr = rng.uniform(40, 60)
        out = (10 * np.log10(intensity / ref) + dr) / dr
    else:
        out = (intensity / ref) ** rng.uniform(0.4, 0.6)
    out = np.clip(out * 240 + rng.normal(0, 2, out.shape), 0, 255)
    return out.astype(np.uint8), lesion.astype(np.uint8), px
