"""B-mode ultrasound-like 2D images with lesions, drawn in physical units (mm, dB).

The scene (tissue layers, lesions, acoustic shadows) and the speckle grain are sized in millimetres
and only then sampled on a pixel grid, so one scene imaged at 128 or 1024 pixels over the same
field of view looks alike once the runner brings it to the model's pixel size (PIXEL_MM, the card's
spacing). Per image: field of view and pixel size; tissue layers with tilt and waviness, smooth
texture and bright specular interfaces; 1-3 lesions, hypoechoic (anechoic cysts to faint solids) or
hyperechoic, with irregular borders and posterior enhancement or shadowing; scatterers convolved
with a point-spread function of random axial and lateral size; depth attenuation, a thermal noise
floor, time-gain compensation with random slider settings and overall gain; log compression over
a random dynamic range (or, in a quarter, a power-law grey map) referenced to the image's own
bright level, so gain saturates a few per cent of pixels at most (the former fixed offset could
clip everything above three quarters of the range); sometimes a sector (fan) mask and near-field
reverberation. Deterministic for a given random generator.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from scipy import ndimage

from core.labels import Label, LabelTable

LABELS = LabelTable((Label(1, "Lesion", (255, 80, 80)),))
PIXEL_MM = 0.3  # the pixel size the model works at (its card's spacing)


@dataclass(frozen=True)
class Ranges:
    """What the generator draws from (uniform unless said otherwise)."""
    pixel_mm: tuple = (0.08, 0.6)  # native pixel size, log-uniform
    fov_mm: tuple = (28.0, 65.0)  # width and depth of the imaged field
    lesion_radius_mm: tuple = (1.5, 9.0)
    hypo_db: tuple = (-30.0, -6.0)  # lesion echogenicity relative to its surroundings
    hyper_db: tuple = (5.0, 14.0)
    hyper_fraction: float = 0.3
    psf_axial_mm: tuple = (0.1, 0.4)  # speckle grain (Gaussian PSF sigma)
    psf_lateral_mm: tuple = (0.2, 0.8)
    attenuation_db_cm: tuple = (0.5, 4.0)  # round trip
    tgc_compensation: tuple = (0.5, 1.1)  # fraction of the attenuation the TGC curve undoes
    tgc_slider_db: float = 4.0  # random TGC slider deviations, +- dB
    noise_db: tuple = (-65.0, -40.0)  # thermal noise floor relative to the surface's mean echo
    gain_db: tuple = (-6.0, 2.0)  # display gain relative to the 99.5th percentile of the echo
    dynamic_range_db: tuple = (40.0, 70.0)
    power_law_fraction: float = 0.25  # display map: amplitude ** 0.5-1.2 instead of log compression
    sector_fraction: float = 0.3


IN_RANGE = Ranges()
#: for the card's out-of-range metric: pixel sizes, speckle, contrast and noise outside the training ranges
OUT_OF_RANGE = replace(IN_RANGE, pixel_mm=(0.03, 0.05), fov_mm=(20.0, 26.0), hypo_db=(-6.0, -4.0),
                       hyper_db=(3.5, 5.0), psf_axial_mm=(0.45, 0.6), psf_lateral_mm=(0.9, 1.2),
                       noise_db=(-40.0, -32.0), dynamic_range_db=(30.0, 40.0))


def _u(rng, lo_hi):
    return float(rng.uniform(*lo_hi))


def _field(rng, shape, sigma_mm: float, pixel_mm: float) -> np.ndarray:
    """Smooth zero-mean unit-SD random field, made on a grid of sigma/2 and interpolated (cheap at any size)."""
    step = max(sigma_mm / 2, pixel_mm)
    coarse = [int(np.ceil(n * pixel_mm / step)) + 4 for n in shape]
    f = ndimage.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), sigma_mm / step)
    f = ndimage.zoom(f, [step / pixel_mm] * 2, order=1, grid_mode=True, mode="nearest")[: shape[0], : shape[1]]
    if f.shape != tuple(shape):
        f = np.pad(f, [(0, shape[0] - f.shape[0]), (0, shape[1] - f.shape[1])], mode="edge")
    return f / max(float(f.std()), 1e-6)


def scene(rng: np.random.Generator, shape, pixel_mm: float, r: Ranges = IN_RANGE,
          posterior: bool = True, hyperechoic: Optional[bool] = None) -> tuple[np.ndarray, np.ndarray]:
    """(echogenicity in dB [rows, cols], lesion mask) for a field of ``shape`` pixels of ``pixel_mm``."""
    rows, cols = shape
    y, x = np.mgrid[:rows, :cols].astype(np.float32) * pixel_mm  # mm; y is depth
    depth, width = rows * pixel_mm, cols * pixel_mm
    echo = np.full(shape, rng.uniform(-3, 3), np.float32)
    for _ in range(rng.integers(2, 5)):  # tissue layers, roughly horizontal, wavy
        d, tilt = rng.uniform(0.05, 1.0) * depth, rng.uniform(-0.3, 0.3)
        wave = rng.uniform(0, 2.5) * np.sin(x * 2 * np.pi / rng.uniform(15, 60) + rng.uniform(0, 6))
        boundary = d + tilt * (x - width / 2) + wave
        echo[y > boundary] += rng.uniform(-6, 6)
        if rng.random() < 0.4:  # a specular interface
            echo += rng.uniform(6, 14) * np.exp(-0.5 * ((y - boundary) / rng.uniform(0.2, 0.5)) ** 2)
    echo += rng.uniform(0.5, 3) * _field(rng, shape, rng.uniform(1, 4), pixel_mm)
    mask = np.zeros(shape, np.uint8)
    r_max = min(r.lesion_radius_mm[1], 0.3 * min(depth, width))
    for _ in range(rng.integers(1, 4) if rng.random() < 0.4 else 1):
        cy, cx = rng.uniform(0.2, 0.85) * depth, rng.uniform(0.15, 0.85) * width
        ry = rng.uniform(r.lesion_radius_mm[0], r_max)
        rx = ry * rng.uniform(0.7, 1.6)
        ang = rng.uniform(0, np.pi)
        u = (x - cx) * np.cos(ang) + (y - cy) * np.sin(ang)
        v = -(x - cx) * np.sin(ang) + (y - cy) * np.cos(ang)
        theta = np.arctan2(v, u)
        wobble = 1 + sum(rng.uniform(0, 0.12) * np.sin(k * theta + rng.uniform(0, 6)) for k in rng.integers(2, 7, 2))
        inside = (u / rx) ** 2 + (v / ry) ** 2 < wobble ** 2
        if not inside.any():
            continue
        hyper = rng.random() < r.hyper_fraction if hyperechoic is None else hyperechoic
        level = _u(rng, r.hyper_db) if hyper else _u(rng, r.hypo_db)
        texture = rng.uniform(0, 2) * _field(rng, shape, rng.uniform(0.5, 2), pixel_mm)
        echo[inside] = (echo[inside] + level + texture[inside]) if rng.random() < 0.5 else (
            float(np.median(echo[inside])) + level + texture[inside])  # textured or uniform surroundings
        mask[inside] = 1
        if posterior:  # enhancement behind fluid, shadow behind solid/calcified
            gain = rng.uniform(2, 6) if (not hyper and rng.random() < 0.6) else -rng.uniform(3, 15)
            half = np.abs(x - cx) < max(rx, ry) * rng.uniform(0.6, 1.0)
            below = half & (y > cy) & ~inside
            soft = ndimage.gaussian_filter(below.astype(np.float32), 0.7 / pixel_mm)
            echo += gain * soft
    return echo, mask


def render(rng: np.random.Generator, echo_db: np.ndarray, pixel_mm: float, r: Ranges = IN_RANGE,
           valid: Optional[np.ndarray] = None, noise_rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """uint8 B-mode image of an echogenicity map (dB): speckle, attenuation, noise, TGC, log compression.
    Settings come from ``rng``, per-pixel noise from ``noise_rng`` (default ``rng``)."""
    noise_rng = noise_rng or rng
    rows, cols = echo_db.shape
    depth_mm = (np.arange(rows, dtype=np.float32) + 0.5) * pixel_mm
    amp = 10 ** (echo_db / 20)
    shape = echo_db.shape
    scatter = noise_rng.standard_normal(shape, np.float32) + 1j * noise_rng.standard_normal(shape, np.float32)
    sigma = (_u(rng, r.psf_axial_mm) / pixel_mm, _u(rng, r.psf_lateral_mm) / pixel_mm)
    field = scatter * amp
    env = np.hypot(ndimage.gaussian_filter(field.real, sigma), ndimage.gaussian_filter(field.imag, sigma))
    env /= max(float(np.sqrt(np.mean(env[: max(rows // 10, 1)] ** 2))), 1e-9)  # surface echo ~ 1
    atten = _u(rng, r.attenuation_db_cm) * depth_mm / 10
    env *= (10 ** (-atten / 20))[:, None]
    noise = 10 ** (_u(rng, r.noise_db) / 20)
    env = np.abs(env + noise * (noise_rng.standard_normal(env.shape, np.float32)
                                + 1j * noise_rng.standard_normal(env.shape, np.float32)) / np.sqrt(2))
    knots = rng.uniform(-r.tgc_slider_db, r.tgc_slider_db, 8)
    tgc = _u(rng, r.tgc_compensation) * atten + np.interp(depth_mm / depth_mm[-1], np.linspace(0, 1, 8), knots)
    env *= (10 ** (tgc / 20))[:, None].astype(np.float32)
    if rng.random() < 0.5:  # near-field reverberation
        env *= (1 + rng.uniform(0.5, 2) * np.exp(-depth_mm / rng.uniform(0.8, 3)))[:, None]
    b = 20 * np.log10(env + 1e-6)
    inside = b if valid is None else b[valid]
    top = float(np.percentile(inside, 99.5)) - _u(rng, r.gain_db)
    if rng.random() < r.power_law_fraction:  # some scanners' grey maps: a power law of the amplitude
        out = np.clip(10 ** ((b - top) / 20 * rng.uniform(0.5, 1.2)), 0, 1) * 255
    else:
        dr = _u(rng, r.dynamic_range_db)
        out = np.clip((b - top + dr) / dr, 0, 1) * 255
    out += noise_rng.normal(0, 1.5, b.shape)
    if valid is not None:
        out[~valid] = 0
    return np.clip(out, 0, 255).astype(np.uint8)


def sector(rng: np.random.Generator, shape, pixel_mm: float) -> np.ndarray:
    """A curvilinear probe's fan: apex above the top centre, 30-45 degrees each side."""
    rows, cols = shape
    y, x = np.mgrid[:rows, :cols].astype(np.float32) * pixel_mm
    apex = -rng.uniform(5, 30)
    half = np.radians(rng.uniform(30, 45))
    return np.abs(np.arctan2(x - cols * pixel_mm / 2, y - apex)) < half


def image(rng: np.random.Generator, size: int = 128, posterior: bool = True,
          hyperechoic: Optional[bool] = None, pixel_mm: float = PIXEL_MM, cols: Optional[int] = None,
          ranges: Ranges = IN_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 B-mode image [rows, cols], lesion mask uint8), ``size`` rows (and ``cols``, default
    square) of ``pixel_mm``. ``posterior=False``: no enhancement or shadow below lesions, so the
    lesion is the only thing that distinguishes it (saliency tests). The image's spacing is
    ``pixel_mm``: give it to the Volume. Generators seeded alike give the same scene over the same
    field of view at any pixel count (only the speckle realisation differs)."""
    shape = (size, cols or size)
    scene_rng, noise_rng = rng.spawn(2)
    echo, mask = scene(scene_rng, shape, pixel_mm, ranges, posterior, hyperechoic)
    valid = sector(scene_rng, shape, pixel_mm) if scene_rng.random() < ranges.sector_fraction else None
    if valid is not None:
        mask &= valid.astype(np.uint8)
    return render(scene_rng, echo, pixel_mm, ranges, valid, noise_rng), mask


def random_case(rng: np.random.Generator, ranges: Ranges = IN_RANGE) -> tuple[np.ndarray, np.ndarray, float]:
    """(image, mask, pixel_mm) at a random field of view and native pixel size (log-uniform)."""
    pixel = float(np.exp(rng.uniform(*np.log(ranges.pixel_mm))))
    rows = max(int(round(_u(rng, ranges.fov_mm) / pixel)), 16)
    cols = max(int(round(_u(rng, ranges.fov_mm) / pixel)), 16)
    img, mask = image(rng, rows, pixel_mm=pixel, cols=cols, ranges=ranges)
    return img, mask, pixel
