"""Thorax-abdomen CT phantoms in Hounsfield units, drawn to cover what scanners produce rather than
one tidy body: air around the body and inside it (trachea, stomach, bowel gas), a table and pad,
arms in some fields of view, bodies from child to obese, contrast phases, organs that are not
labelled but look like the labelled ones (heart, spleen, aorta, muscle), random smooth deformations
of every shape, noise and reconstruction kernels, slice thickness, metal streaks and truncated
fields of view.

Each phantom is a set of random shapes in world millimetres, so it renders on any grid: training
patches on the model grid, held-out cases on random native grids that the runner resamples like a
user's scan. ``Settings`` holds the ranges; ``OUTSIDE`` are ranges the model never saw, for the
card's out-of-range metrics."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.geometry import Geometry
from core.labels import Label, LabelTable

LABELS = LabelTable((Label(1, "Lung", (90, 180, 230)), Label(2, "Liver", (200, 100, 60)),
                     Label(3, "Kidney", (220, 190, 60)), Label(4, "Bone", (241, 214, 145))))
LUNG, LIVER, KIDNEY, BONE = 1, 2, 3, 4


@dataclass(frozen=True)
class Settings:
    body_scale: tuple = (0.6, 1.3)  # child .. obese, times an adult's half-width 165 mm
    fat_mm: tuple = (3.0, 45.0)
    noise_hu: tuple = (4.0, 35.0)
    thickness_mm: tuple = (0.6, 5.0)
    deform_mm: tuple = (2.0, 12.0)
    p_metal: float = 0.12
    p_truncate: float = 0.2
    pixel_mm: tuple = (1.2, 1.8)  # held-out scans' in-plane pixel size


TRAIN = Settings()
OUTSIDE = Settings(body_scale=(1.35, 1.5), fat_mm=(45.0, 60.0), noise_hu=(45.0, 70.0), thickness_mm=(6.0, 8.0),
                   deform_mm=(12.0, 16.0), p_metal=0.5, p_truncate=0.5, pixel_mm=(0.9, 1.1))


def _q(p, c, r):
    """Ellipsoid quadratic form: < 1 inside."""
    return ((p[0] - c[0]) / r[0]) ** 2 + ((p[1] - c[1]) / r[1]) ** 2 + ((p[2] - c[2]) / r[2]) ** 2


class _Waves:
    """A smooth random scalar field in [-1, 1]: a sum of plane waves of random direction."""

    def __init__(self, rng, n=4, wavelength=(40.0, 120.0)):
        d = rng.normal(size=(n, 3))
        k = d / np.linalg.norm(d, axis=1, keepdims=True) * (2 * np.pi / rng.uniform(*wavelength, (n, 1)))
        self.k, self.phase = k.astype(np.float32), rng.uniform(0, 2 * np.pi, n).astype(np.float32)

    def __call__(self, p):
        out = 0.0
        for k, ph in zip(self.k, self.phase):
            out = out + np.sin(k[0] * p[0] + k[1] * p[1] + k[2] * p[2] + ph)
        return out * np.float32(1 / np.sqrt(len(self.phase) / 2))


class Phantom:
    """Random shape parameters (mm); ``render(grid)`` gives (HU int16, labels uint8) on any grid."""

    def __init__(self, rng: np.random.Generator, settings: Settings = TRAIN) -> None:
        u = rng.uniform
        self.rng, self.s = rng, settings
        scale = u(*settings.body_scale)
        self.a = 165 * scale * u(0.85, 1.15)  # half-width (x)
        org = 0.55 + 0.45 * min(scale, 1.0)  # organ size follows body size up to an adult's
        self.b = self.a * u(0.58, 0.78)  # half-depth (y)
        self.p_body = u(2.0, 3.2)  # superellipse exponent: round .. boxy
        self.fat = u(*settings.fat_mm) * (0.5 + 0.5 * scale)
        self.wall = u(8, 16)
        self.fat = min(self.fat, 0.4 * self.b - self.wall)  # a thin body keeps room inside its wall
        self.angle = np.radians(u(-12, 12))
        self.shift = np.array([u(-30, 30), u(-25, 25), u(-40, 40)])
        self.dome_r = u(-15, 15)  # right diaphragm dome; the left one sits lower
        self.dome_l = self.dome_r - u(5, 25)
        self.lung_h = u(190, 280) * (0.7 + 0.3 * scale)
        self.lung_hu = u(-900, -760)
        self.phase = rng.choice(["plain", "arterial", "portal", "delayed"])
        blood = {"plain": u(35, 50), "arterial": u(200, 380), "portal": u(130, 200), "delayed": u(70, 110)}
        self.blood = blood[self.phase]
        self.liver_hu = {"plain": u(45, 70), "arterial": u(60, 85), "portal": u(90, 135), "delayed": u(70, 95)}[self.phase]
        self.spleen_hu = self.liver_hu + u(-15, 15)
        self.kidney_hu = {"plain": (u(28, 40), u(25, 38)), "arterial": (u(140, 220), u(50, 90)),
                          "portal": (u(130, 190), u(110, 170)), "delayed": (u(90, 140), u(90, 140))}[self.phase]
        self.fat_hu, self.muscle_hu = u(-125, -80), u(35, 60)
        self.liver = dict(c=(-u(0.22, 0.45), -u(-0.05, 0.25), -u(50, 90) * org),
                          r=(u(0.35, 0.58), u(0.45, 0.75), u(60, 105) * org),
                          taper=u(0.1, 0.5))
        self.kid = [dict(dx=u(5, 45) * org, dy=-u(-15, 30) * org, dz=-u(80, 165) * org,
                         r=(u(22, 36) * org, u(17, 30) * org, u(42, 70) * org), tilt=np.radians(u(-25, 25)))
                    for _ in range(2)]
        self.kid_present = [u() > 0.04, u() > 0.04]  # nephrectomy now and then
        self.perirenal = u(1.0, 2.2)
        self.spine = dict(rx=u(15, 24) * org, ry=u(13, 20) * org, back=u(45, 80) * org, pitch=u(26, 36), disc=u(5, 9),
                          phase=u(0, 40), cortex_hu=u(550, 1000), core_hu=u(130, 320))
        # the vertebral body sits in front of the arch and the paraspinal muscles, not against the back
        self.spine_y = max(self.b * 0.92 - self.fat - self.spine["back"] - self.spine["ry"], 0.1 * self.b)
        self.paraspinal = u(30, 55) * org
        # the liver holds the right kidney down: the left one usually sits higher (by up to a vertebra)
        self.kid[1]["dz"] += u(-5, 25) * org
        for k in self.kid:  # hilum turned anteromedially; an open hilum (a C on axial slices) in most
            k["yaw"], k["hilum"] = np.radians(u(0, 45)), (u(0.45, 0.7) if u() < 0.65 else None)
        # a thick posterior abdominal wall (quadratus lumborum, obliques) that the liver and kidneys lie against
        self.back_wall = u(5, 25) * org if u() < 0.6 else 0.0
        room = 0.85 * (self.a - self.fat - self.wall)  # a small body's kidneys stay inside its wall
        for k in self.kid:
            k["dx"] = max(0.0, min(k["dx"], room - self.spine["rx"] - 2 * k["r"][0]))
        self.rib = dict(pitch=u(22, 32), phase=u(0, 30), w=u(6, 11), slant=u(10, 40), hu=u(350, 900))
        self.arms = u() < 0.35
        self.arm_r, self.arm_gap = u(30, 45) * org, u(5, 40)
        self.org = org
        self.table = rng.choice(["none", "slab", "shell"], p=[0.15, 0.35, 0.5])
        self.table_gap, self.table_hu, self.table_curve = u(0, 30), u(-100, 500), u(0, 60)
        self.pad = u() < 0.6
        self.bowel_contrast = u() < 0.25
        self.heart = dict(c=(u(5, 30) * org, -u(0.1, 0.4), u(30, 70) * org),
                          r=(u(45, 70) * org, u(40, 60) * org, u(45, 65) * org))
        self.stomach = dict(c=(u(0.25, 0.45), -u(0.1, 0.4), -u(20, 70) * org),
                            r=(u(30, 60) * org, u(25, 50) * org, u(35, 60) * org),
                            air=u(0, 0.7), content=u(0, 40) if u() < 0.8 else u(150, 400))
        self.bowel_t, self.gas_t = u(0.0, 0.5), u(0.45, 0.9)
        self.visceral = u(-0.6, 1.0)  # visceral fat: most of the abdomen .. none (soft tissue everywhere)
        self.bowel_hu = u(15, 60)
        self.deform = [(_Waves(rng, 3, (120.0, 300.0)), u(*settings.deform_mm)) for _ in range(3)]
        self.body_wave = _Waves(rng, 3, (80.0, 250.0))
        self.vessel = (_Waves(rng, 4, (25.0, 60.0)), _Waves(rng, 4, (25.0, 60.0)), u(0.05, 0.12))
        self.bowel = _Waves(rng, 5, (30.0, 70.0))
        self.mesentery = _Waves(rng, 4, (15.0, 40.0))
        self.noise, self.thickness = u(*settings.noise_hu), u(*settings.thickness_mm)
        self.kernel = u(-0.6, 1.2)  # < 0 sharp (edge-enhancing), > 0 smooth, in voxels of the output
        self.metal = u() < settings.p_metal
        self.metal_c = (u(-0.5, 0.5), u(-0.2, 0.8), u(-200, 100))
        self.truncate = u(0.75, 0.95) if u() < settings.p_truncate else None
        self.air_noise = u(0.3, 1.0)  # air outside the body is noisy too, a bit less than inside
        self.fov_r = u(200, 260) if u() < 0.4 else None

    def centre_of(self, what: str, rng: np.random.Generator) -> np.ndarray:
        """A point (phantom frame, mm) near an organ, jittered; 'anywhere' covers a whole scan field."""
        u = rng.uniform
        j = np.array([u(-40, 40), u(-40, 40), u(-50, 50)])
        sp, side = self.spine, rng.choice([-1, 1])
        if what == "kidney":
            k = self.kid[0 if side < 0 else 1]
            return np.array([side * (sp["rx"] + k["dx"] + k["r"][0]), self.spine_y - k["dy"],
                             self.dome_r + k["dz"]]) + j
        if what == "liver":
            lc = self.liver["c"]
            return np.array([lc[0] * self.a, lc[1] * self.b, self.dome_r + lc[2]]) + j
        if what == "lung":
            return np.array([side * self.a * 0.42, 0.0, self.dome_r + self.lung_h * 0.45]) + j
        if what == "spine":
            return np.array([0.0, self.spine_y, self.dome_r + u(-200, 150)]) + j * 0.5
        if what == "body":
            return np.array([u(-0.7, 0.7) * self.a, u(-0.6, 0.8) * self.b, self.dome_r + u(-220, 220)])
        return np.array([u(-260, 260), u(-220, 300), self.dome_r + u(-250, 250)])

    def world(self, point) -> np.ndarray:
        """Phantom-frame mm to LPS mm (undoing the in-plane rotation and the shift)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        x, y, z = point
        return np.array([c * x + s * y, -s * x + c * y, z]) + self.shift

    def _coords(self, grid: Geometry):
        nx, ny, nz = grid.size
        idx = (np.arange(nx, dtype=np.float32)[None, None, :], np.arange(ny, dtype=np.float32)[None, :, None],
               np.arange(nz, dtype=np.float32)[:, None, None])
        steps = (np.asarray(grid.direction, np.float64) * np.asarray(grid.spacing, np.float64)).astype(np.float32)
        w = [np.float32(o - sh) + sum(steps[r, col] * idx[col] for col in range(3))
             for r, (o, sh) in enumerate(zip(grid.origin, self.shift))]
        w = [np.broadcast_to(c, (nz, ny, nx)) for c in w]
        c, s = np.float32(np.cos(self.angle)), np.float32(np.sin(self.angle))
        self._level = (np.ascontiguousarray(w[0]), np.ascontiguousarray(w[1]))
        return c * w[0] - s * w[1], s * w[0] + c * w[1], np.ascontiguousarray(w[2])

    def render(self, grid: Geometry) -> tuple[np.ndarray, np.ndarray]:
        x0, y0, z0 = self._coords(grid)
        p0 = (x0, y0, z0)
        # organs move with a smooth random deformation; the body outline has its own
        x, y, z = (x0 + self.deform[0][1] * self.deform[0][0](p0), y0 + self.deform[1][1] * self.deform[1][0](p0),
                   z0 + self.deform[2][1] * self.deform[2][0](p0))
        p = (x, y, z)
        a, b = self.a * (1 + 0.06 * self.body_wave(p0)), self.b * (1 + 0.06 * self.body_wave((y0, z0, x0)))
        hu = np.full(x.shape, -1000.0, np.float32)
        lab = np.zeros(x.shape, np.uint8)

        def put(mask, value, label=0):
            hu[mask] = value[mask] if np.ndim(value) else value
            lab[mask] = label

        def shell(grow):  # superellipse body outline, flatter at the back, grown by ``grow`` mm
            bb = np.where(y0 > 0, b * 0.92 + grow, b + grow)
            return (np.abs(x0) / (a + grow)) ** self.p_body + (np.abs(y0) / bb) ** (self.p_body + (y0 > 0)) < 1

        if self.table != "none":  # the table stays level while the patient lies rotated on it
            tx, ty = self._level
            top = self.b * 0.92 + self.table_gap
            if self.pad:
                put((ty > top) & (ty < top + 25) & (np.abs(tx) < self.a + 60), -650 + 150 * self.mesentery(p0))
            ty = ty - top - 25 * self.pad + self.table_curve * (np.abs(tx) / 260) ** 2  # edges curve up
            if self.table == "slab":
                put((ty > 0) & (ty < 12) & (np.abs(tx) < 260), self.table_hu)
            else:  # carbon-fibre shell: two thin dense skins around a light core
                put((ty > 0) & (ty < 30) & (np.abs(tx) < 260), -900)
                put((((ty > 0) & (ty < 3)) | ((ty > 27) & (ty < 30))) & (np.abs(tx) < 260), self.table_hu + 150)
        body = shell(0)
        inner = shell(-self.fat)
        cavity = shell(-self.fat - self.wall)
        put(body, self.fat_hu)
        put(inner, self.muscle_hu)
        if self.arms:
            for side in (-1, 1):
                cx = side * (self.a + self.arm_gap + self.arm_r)
                arm = ((x0 - cx) / self.arm_r) ** 2 + (y0 / (self.arm_r * 0.9)) ** 2 < 1
                put(arm, self.fat_hu)
                put(((x0 - cx) / (self.arm_r - 8)) ** 2 + (y0 / (self.arm_r * 0.9 - 8)) ** 2 < 1, self.muscle_hu)
                put(((x0 - cx) / 11) ** 2 + ((y0 + 3) / 11) ** 2 < 1, self.spine["cortex_hu"], BONE)

        dome = np.where(x < 0, self.dome_r, self.dome_l) + 30 * (1 - np.clip((np.abs(x) / (a * 0.6)) ** 2, 0, 1))
        thorax = z > dome
        # abdomen: visceral fat and mesentery, bowel loops with gas, where nothing else is drawn
        abdomen = cavity & ~thorax
        mes, bowel = self.mesentery(p), self.bowel(p)
        put(abdomen & (mes > self.visceral), self.fat_hu + 10)
        loops = abdomen & (bowel > self.bowel_t) & (z < dome - 40)
        put(loops, (300 if self.bowel_contrast else self.bowel_hu) + 15 * self.mesentery((z, x, y)))
        put(loops & (bowel > self.gas_t) & (y < b * 0.3), -1000)

        put(abdomen & (y > self.spine_y) & (np.abs(x) < self.spine["rx"] + self.paraspinal), self.muscle_hu + 5)
        lungs = np.zeros(x.shape, bool)
        for side in (-1, 1):
            lungs |= _q(p, (side * a * 0.42, b * 0.05, dome.mean() + self.lung_h * 0.45),
                        (a * 0.4, b * 0.78, self.lung_h * 0.6)) < 1
        lungs &= thorax & cavity & (np.abs(x) > a * 0.09 + 12) & (z < dome.mean() + self.lung_h)
        put(lungs, self.lung_hu + 12 * mes, LUNG)
        vw1, vw2, ve = self.vessel
        put(lungs & (np.abs(vw1(p)) < ve) & (np.abs(vw2(p)) < ve * 2), self.blood * 0.3 + 10, LUNG)
        hc, hr = self.heart["c"], self.heart["r"]
        heart = (_q(p, (hc[0], hc[1] * b, self.dome_l + hc[2]), hr) < 1) & thorax & cavity
        put(heart, self.muscle_hu)
        put(heart & (_q(p, (hc[0], hc[1] * b, self.dome_l + hc[2]), [r * 0.65 for r in hr]) < 1), self.blood)
        trachea_x = 4 * np.sin(z / 60)
        carina = dome.mean() + self.lung_h * 0.55
        sp = self.spine
        spine_y = self.spine_y
        airway = ((x - trachea_x) ** 2 + (y + spine_y * 0.1) ** 2 < 11 ** 2) & (z > carina) & cavity
        for side in (-1, 1):  # main bronchi: short tubes running down and out from the carina
            t = np.clip((z - carina) / -40, 0, 1)
            airway |= ((x - side * 45 * t) ** 2 + (y + spine_y * 0.1) ** 2 < 7 ** 2) & (z <= carina) & (z > carina - 40)
        put(airway, -1000)
        aorta = ((x - 22) ** 2 + (y - (spine_y - sp["ry"] - 14)) ** 2 < (12 + 3 * (self.a > 170)) ** 2) & cavity
        put(aorta & (z < carina - 20), self.blood)

        lc, lr = self.liver["c"], self.liver["r"]
        cx = lc[0] * a
        rx = lr[0] * a * (1 - self.liver["taper"] * np.clip((x - cx) / (lr[0] * a), -1, 1))
        liver = (((x - cx) / rx) ** 2 + ((y - lc[1] * b) / (lr[1] * b)) ** 2
                 + ((z - self.dome_r - lc[2]) / lr[2]) ** 2 < 1) & cavity & ~thorax
        put(liver, self.liver_hu + 6 * mes, LIVER)
        o = self.org
        spleen = (_q(p, (a * 0.5, b * 0.3, self.dome_l - 55 * o), (30 * o, 50 * o, 55 * o)) < 1) & cavity & ~thorax & ~liver
        put(spleen, self.spleen_hu)
        st = self.stomach
        stomach = (_q(p, (st["c"][0] * a, st["c"][1] * b, self.dome_l + st["c"][2]), st["r"]) < 1) & cavity & ~thorax & ~liver
        level = st["c"][1] * b - st["r"][1] + 2 * st["r"][1] * st["air"]
        put(stomach, st["content"])
        put(stomach & (y < level), -1000)
        put(stomach & (y < level) & ~(_q(p, (st["c"][0] * a, st["c"][1] * b, self.dome_l + st["c"][2]),
                                         [r - 3 for r in st["r"]]) < 1), self.muscle_hu)
        for side, k, present in zip((-1, 1), self.kid, self.kid_present):
            c = (side * (sp["rx"] + k["dx"] + k["r"][0]), spine_y - k["dy"], self.dome_r + k["dz"])
            ct, st_ = np.cos(k["tilt"]), np.sin(k["tilt"])
            cw, sw = np.cos(side * k["yaw"]), np.sin(side * k["yaw"])  # medial axis -> anteromedial
            x1, ky = (x - c[0]) * cw + (y - c[1]) * sw, (y - c[1]) * cw - (x - c[0]) * sw
            kx, kz = x1 * ct - (z - c[2]) * st_ * side, x1 * st_ * side + (z - c[2]) * ct
            qq = (kx / k["r"][0]) ** 2 + (ky / k["r"][1]) ** 2 + (kz / k["r"][2]) ** 2
            put((qq < self.perirenal) & (qq > 1) & cavity & (np.abs(x) > sp["rx"]), self.fat_hu)  # perirenal fat
            if not present:
                continue
            kidney = (qq < 1) & cavity
            put(kidney, self.kidney_hu[0], KIDNEY)
            # medullary pyramids: an inner zone broken by cortical columns
            pyramids = (qq < 0.55) & (qq > 0.15) & (np.sin(6 * np.arctan2(ky, kz)) > -0.3)
            put(pyramids, self.kidney_hu[1], KIDNEY)
            if k["hilum"] is None:  # renal sinus fat and pelvis at the hilum, closed
                sinus = (qq < 0.35) & (kx * -side > -k["r"][0] * 0.2)
            else:  # the sinus opens medially through the hilum
                r = k["r"]
                sinus = kidney & ((kx + side * k["hilum"] * r[0]) ** 2 / (0.55 * r[0]) ** 2
                                  + ky ** 2 / (0.6 * r[1]) ** 2 + kz ** 2 / (0.5 * r[2]) ** 2 < 1)
            put(sinus, self.fat_hu + 30)
            put(sinus & (qq < 0.12), 10)
        if self.back_wall:
            band = abdomen & ~shell(-self.fat - self.wall - self.back_wall) & (y0 > 0) & (lab != KIDNEY)
            put(band & (np.abs(x) > sp["rx"] + self.paraspinal * 0.8), self.muscle_hu + 3)
        for side in (-1, 1):  # psoas, a muscle beside the spine below the kidneys
            put((((x - side * (sp["rx"] + 22)) / 22) ** 2 + ((y - spine_y) / 20) ** 2 < 1)
                & (z < self.dome_r - 120) & cavity, self.muscle_hu + 5)

        # spine: vertebral bodies with cortex and discs, canal, arch and spinous process
        vb = ((x / sp["rx"]) ** 2 + ((y - spine_y) / sp["ry"]) ** 2 < 1) & body
        disc = np.mod(z - sp["phase"], sp["pitch"]) < sp["disc"]
        core = ((x / (sp["rx"] - 3)) ** 2 + ((y - spine_y) / (sp["ry"] - 3)) ** 2 < 1)
        put(vb & ~disc, sp["cortex_hu"], BONE)
        put(vb & ~disc & core, sp["core_hu"], BONE)
        put(vb & disc, 85)
        canal_y = spine_y + sp["ry"] + 11
        arch = (x ** 2 + (y - canal_y) ** 2 < 17 ** 2) & ~(x ** 2 + (y - canal_y) ** 2 < 10 ** 2) & ~disc
        spinous = (np.abs(x) < 5) & (y > canal_y) & (y < canal_y + 35) & ~disc
        put((arch | spinous) & inner, sp["cortex_hu"] * 0.8, BONE)
        put((x ** 2 + (y - canal_y) ** 2 < 10 ** 2) & inner, 20)
        # ribs: bands along the chest wall, slanting down to the front; cartilage near the sternum
        rb = self.rib
        ring = shell(-self.fat - 2) & ~shell(-self.fat - 2 - rb["w"])
        theta = np.arctan2(np.abs(x), y)  # 0 at the back, pi at the front
        band = np.mod(z - rb["phase"] + rb["slant"] * theta / np.pi, rb["pitch"]) < rb["w"]
        ribs = ring & band & (z > self.dome_r - 70) & (z < dome.mean() + self.lung_h)
        put(ribs & ~((np.abs(x) < a * 0.3) & (y < 0)), rb["hu"], BONE)
        put(ribs & (np.abs(x) < a * 0.3) & (y < 0), 110)
        sternum = (np.abs(x) < 14) & (y < 0) & ring & (z > self.dome_r - 10) & (z < dome.mean() + self.lung_h * 0.8)
        put(sternum, rb["hu"] * 0.7, BONE)
        for side in (-1, 1):  # scapulae: thin plates behind the upper ribs
            put((np.abs(x - side * a * 0.5) < a * 0.22) & (np.abs(y - b * 0.78 + 0.1 * np.abs(x)) < 4)
                & (z > dome.mean() + self.lung_h * 0.45) & inner, rb["hu"], BONE)

        if self.metal:
            mc = (self.metal_c[0] * a, self.metal_c[1] * b, self.metal_c[2])
            r = np.sqrt((x0 - mc[0]) ** 2 + (y0 - mc[1]) ** 2) + 1e-3
            near = np.abs(z0 - mc[2]) < 25
            hu += np.where(near & body, 400 * np.cos(6 * np.arctan2(y0 - mc[1], x0 - mc[0])) * np.exp(-r / 60), 0)
            put(near & (r < 6), 3000)
        return self._acquire(hu, lab, grid, x0)

    def _acquire(self, hu, lab, grid: Geometry, x0):
        """Slice thickness, reconstruction kernel, noise and a truncated field of view."""
        sz = float(grid.spacing[2])
        if self.thickness > sz:
            hu = ndimage.gaussian_filter1d(hu, (self.thickness - sz) / 2.355 / sz, axis=0)
        sx = float(grid.spacing[0])
        noise = self.rng.normal(0, 1, hu.shape).astype(np.float32)
        if self.kernel > 0:  # smooth kernels: correlated noise and softer edges
            sig = self.kernel * 1.2 / sx
            noise = ndimage.gaussian_filter(noise, (0, sig, sig))
            noise /= max(float(noise.std()), 1e-6)
            hu = ndimage.gaussian_filter(hu, (0, sig * 0.7, sig * 0.7))
        else:  # sharp kernels overshoot at edges
            blur = ndimage.gaussian_filter(hu, (0, 1.0, 1.0))
            hu = hu + (-self.kernel) * (hu - blur)
        hu = hu + self.noise * noise * np.where(hu > -950, 1.0, self.air_noise)
        hu = hu + self.rng.normal(0, 3, hu.shape).astype(np.float32)
        if self.fov_r is not None:  # outside the reconstruction circle the scanner writes padding
            cut = self._level[0] ** 2 + self._level[1] ** 2 > self.fov_r ** 2
            hu[cut], lab[cut] = -1024, 0
        if self.truncate is not None:
            cut = np.abs(x0) > self.a * self.truncate  # the scan's field of view is narrower than the body
            hu[cut], lab[cut] = -1024, 0
        return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), lab


def model_grid(spacing=(2.0, 2.0, 3.0), extent=(420.0, 300.0, 420.0)) -> Geometry:
    size = [int(round(e / s)) for e, s in zip(extent, spacing)]
    origin = [-(n - 1) * s / 2 for n, s in zip(size, spacing)]
    return Geometry(tuple(size), spacing, origin, np.eye(3))


def native_grid(rng: np.random.Generator, settings: Settings = TRAIN) -> Geometry:
    """A scan's grid: random in-plane pixel size and slice thickness, a 280 mm stack."""
    thick = rng.uniform(*settings.thickness_mm)
    inplane = rng.uniform(*settings.pixel_mm)
    return model_grid((inplane, inplane, max(thick, 1.5)), (440.0, 340.0, 280.0))


def training_patch(rng: np.random.Generator, patch_xyz, spacing, settings: Settings = TRAIN):
    """A patch of a new random phantom, rendered directly on the model grid (only the patch's
    voxels are computed). Centres are balanced: the small organs (kidneys) would otherwise be seen
    a tenth as often as the lungs, and a scan's far corners (air, table) hardly ever."""
    ph = Phantom(rng, settings)
    centre = ph.world(ph.centre_of(rng.choice(["kidney", "liver", "lung", "spine", "body", "anywhere"],
                                              p=[0.25, 0.15, 0.1, 0.1, 0.2, 0.2]), rng))
    extent = (np.asarray(patch_xyz) - 1) * np.asarray(spacing)
    grid = Geometry(tuple(int(p) for p in patch_xyz), spacing, centre - extent / 2, np.eye(3))
    return ph.render(grid)


__all__ = ["LABELS", "OUTSIDE", "Phantom", "Settings", "TRAIN", "model_grid", "native_grid", "training_patch"]
