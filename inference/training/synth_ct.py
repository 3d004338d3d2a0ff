"""Thorax-abdomen CT phantoms with realistic HU: body with subcutaneous fat, lungs, liver, kidneys,
spine and ribs. Each phantom is a random set of shapes defined in world millimetres, so it can be
evaluated on any grid: training samples on the model grid, held-out cases at random native
spacings (the runner then resamples them, as it does a user's scan)."""
from __future__ import annotations

import numpy as np

from core.geometry import Geometry
from core.labels import Label, LabelTable

LABELS = LabelTable((Label(1, "Lung", (90, 180, 230)), Label(2, "Liver", (200, 100, 60)),
                     Label(3, "Kidney", (220, 190, 60)), Label(4, "Bone", (241, 214, 145))))


def _ellipsoid(p, c, r):
    return ((p[0] - c[0]) / r[0]) ** 2 + ((p[1] - c[1]) / r[1]) ** 2 + ((p[2] - c[2]) / r[2]) ** 2 < 1


class Phantom:
    """Random shape parameters (mm); ``render(grid)`` gives (HU int16, labels uint8) on any grid."""

    def __init__(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        self.rng = rng
        self.a, self.b = u(140, 190), u(95, 135)  # body half-width (x) and half-depth (y)
        self.fat = u(8, 28)
        self.angle = np.radians(u(-10, 10))
        self.shift = np.array([u(-25, 25), u(-20, 20), u(-40, 40)])
        self.diaphragm = u(-20, 20)
        self.lung_scale = u(0.85, 1.15)
        self.liver = (u(0.38, 0.5), u(0.45, 0.62), u(65, 95), u(45, 110))  # x-frac, y-frac, half-height, HU
        self.kidney = (u(26, 36), u(20, 28), u(42, 60), u(25, 180))  # radii, HU (plain or enhanced)
        self.spine_r = u(16, 22)
        self.rib_pitch, self.rib_phase = u(22, 30), u(0, 30)
        self.noise = u(4, 25)

    def render(self, grid: Geometry) -> tuple[np.ndarray, np.ndarray]:
        nx, ny, nz = grid.size
        k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
        w = grid.index_to_world(np.stack([i, j, k], -1).reshape(-1, 3).astype(np.float32)).reshape(nz, ny, nx, 3)
        w = w - self.shift
        c, s = np.cos(self.angle), np.sin(self.angle)
        x, y, z = c * w[..., 0] - s * w[..., 1], s * w[..., 0] + c * w[..., 1], w[..., 2]
        p = (x, y, z)
        a, b = self.a, self.b
        hu = np.full(x.shape, -1000.0, np.float32)
        labels = np.zeros(x.shape, np.uint8)
        body = (x / a) ** 2 + (y / b) ** 2 < 1
        inner = (x / (a - self.fat)) ** 2 + (y / (b - self.fat)) ** 2 < 1
        hu[body] = -100
        hu[inner] = 40
        dome = self.diaphragm + 25 * (1 - (x / a) ** 2)  # higher in the middle of each side
        above = z > dome
        ls = self.lung_scale
        for side in (-1, 1):
            lung = _ellipsoid(p, (side * a * 0.42, -b * 0.05, dome.mean() + 110 * ls), (a * 0.33 * ls, b * 0.62, 125 * ls))
            lung &= above & inner
            hu[lung] = -850
            labels[lung] = 1
        fx, fy, half, liver_hu = self.liver
        liver = _ellipsoid(p, (-a * 0.33, -b * 0.1, self.diaphragm - half * 0.8), (a * fx, b * fy, half))
        liver &= ~above & inner
        hu[liver] = liver_hu
        labels[liver] = 2
        kr, ky, kh, k_hu = self.kidney
        for side in (-1, 1):
            kid = _ellipsoid(p, (side * a * 0.36, b * 0.42, self.diaphragm - 115), (kr, ky, kh)) & inner
            hu[kid] = k_hu
            labels[kid] = 3
        spine_c = b * 0.62
        spine = ((x / self.spine_r) ** 2 + ((y - spine_c) / self.spine_r) ** 2 < 1) & body
        cortex = spine & ~((x / (self.spine_r - 3)) ** 2 + ((y - spine_c) / (self.spine_r - 3)) ** 2 < 1)
        hu[spine] = 350
        hu[cortex] = 900
        labels[spine] = 4
        shell = ((x / (a - self.fat - 4)) ** 2 + (y / (b - self.fat - 4)) ** 2 < 1) & \
                ~((x / (a - self.fat - 12)) ** 2 + (y / (b - self.fat - 12)) ** 2 < 1)
        ribs = shell & (np.mod(z - self.rib_phase, self.rib_pitch) < 9) & (z > self.diaphragm - 40) & (y > -b * 0.7)
        hu[ribs] = 650
        labels[ribs] = 4
        hu += self.rng.normal(0, self.noise, hu.shape).astype(np.float32)
        return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), labels


def model_grid(spacing=(2.0, 2.0, 3.0), extent=(420.0, 300.0, 420.0)) -> Geometry:
    size = [int(round(e / s)) for e, s in zip(extent, spacing)]
    origin = [-(n - 1) * s / 2 for n, s in zip(size, spacing)]
    return Geometry(tuple(size), spacing, origin, np.eye(3))


def native_grid(rng: np.random.Generator) -> Geometry:
    """A scan's grid: random in-plane pixel size and slice thickness, a 300 mm stack."""
    inplane, thick = rng.uniform(1.2, 1.8), rng.uniform(1.5, 5.0)
    return model_grid((inplane, inplane, thick), (400.0, 280.0, 240.0))


def training_patch(rng: np.random.Generator, patch_xyz, spacing) -> tuple[np.ndarray, np.ndarray]:
    """A patch of a new random phantom, rendered directly on the model grid around a random point
    of the body (only the patch's voxels are computed)."""
    ph = Phantom(rng)
    centre = np.array([rng.uniform(-0.6, 0.6) * ph.a, rng.uniform(-0.5, 0.6) * ph.b,
                       ph.diaphragm + rng.uniform(-200, 180)]) + ph.shift
    extent = (np.asarray(patch_xyz) - 1) * np.asarray(spacing)
    grid = Geometry(tuple(int(p) for p in patch_xyz), spacing, centre - extent / 2, np.eye(3))
    return ph.render(grid)
