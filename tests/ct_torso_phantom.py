"""Thorax-abdomen CT phantoms in Hounsfield units, for judging the CT default model on anatomy
its training generator never drew. Written without looking at inference/training/, so the
model is not tested on its own generator: body wall in polar form (superellipse outline, fat and
muscle offsets), diaphragm as two paraboloid domes, organs as rotated ellipsoids and tubes,
spine from per-level vertebral heights, ribs as paths around the wall with a downward sweep.

Labels: 1 lung parenchyma (with intrapulmonary vessels and small airways; not trachea or main
bronchi), 2 liver (with intrahepatic vessels; not the gallbladder or IVC), 3 kidney parenchyma
(cortex + medulla; not sinus fat or pelvis), 4 bone (vertebrae incl. posterior elements, ribs,
sternum, scapulae, clavicles, arm bones); 0 everything else (discs, costal cartilage, stomach
and bowel gas). Synthetic test data only; nothing here is clinically validated."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.volume import Volume, WindowPreset

LUNG, LIVER, KIDNEY, BONE = 1, 2, 3, 4
_COLON, _LOOP = 9, 8  # scratch labels for bowel lumen while gas is placed; cleared to 0 at the end
_F = np.float32

# HU ranges per contrast phase: (plain, arterial, portal venous)
_HU = {
    "blood_art": ((35, 50), (250, 400), (130, 190)),
    "blood_ven": ((35, 50), (150, 350), (120, 170)),
    "ivc": ((35, 50), (60, 100), (110, 150)),
    "liver_vessel": ((30, 45), (80, 130), (150, 200)),
    "liver": ((52, 68), (65, 85), (95, 130)),
    "spleen": ((40, 52), (90, 140), (105, 130)),
    "cortex": ((28, 40), (150, 220), (150, 200)),
    "medulla": ((25, 35), (60, 110), (120, 170)),
    "pancreas": ((38, 50), (100, 140), (85, 110)),
    "myocardium": ((35, 50), (90, 130), (85, 110)),
    "bowel_wall": ((30, 45), (70, 110), (70, 100)),
    "lung_vessel": ((15, 40), (150, 300), (110, 170)),
    "muscle": ((40, 55), (48, 62), (48, 65)),
}
_PHASES = ("plain", "arterial", "portal")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _frame(axis, hint) -> np.ndarray:
    """Rows: ``axis``, the part of ``hint`` orthogonal to it, and their cross product."""
    a = _unit(axis)
    b = _unit(np.asarray(hint, float) - np.dot(hint, a) * a)
    return np.stack([a, b, np.cross(a, b)])


def _smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


class _Canvas:
    """HU and label arrays on the grid, plus shapes evaluated inside their bounding boxes only."""

    def __init__(self, X, Y, Z):
        self.X, self.Y, self.Z = X, Y, Z
        self.hu = np.full((len(Z), len(Y), len(X)), -1000.0, _F)
        self.lab = np.zeros(self.hu.shape, np.uint8)

    def box(self, lo, hi):
        """Slices and coordinates of the grid part inside [lo, hi] (mm); empty where it misses."""
        sl = []
        for axis, a, b in ((self.Z, lo[2], hi[2]), (self.Y, lo[1], hi[1]), (self.X, lo[0], hi[0])):
            i0, i1 = int(np.searchsorted(axis, a)), int(np.searchsorted(axis, b, side="right"))
            sl.append(slice(i0, max(i0, i1)))
        sl = tuple(sl)
        return sl, self.X[sl[2]][None, None, :], self.Y[sl[1]][None, :, None], self.Z[sl[0]][:, None, None]

    def ellipsoid(self, c, radii, axes=np.eye(3), pad=0.0):
        """(slices, e): e < 1 inside; e is the squared normalised radius."""
        c = np.asarray(c, float)
        r = max(radii) + pad
        b = self.box(c - r, c + r)
        if b is None:
            return None, None
        return b[0], self.ellipsoid_on(b, c, radii, axes)

    @staticmethod
    def ellipsoid_on(b, c, radii, axes=np.eye(3)):
        """The ellipsoid's e evaluated on the box ``b`` of another shape."""
        _, x, y, z = b
        dx, dy, dz = x - _F(c[0]), y - _F(c[1]), z - _F(c[2])
        e = 0
        for ax, rr in zip(axes, radii):
            e = e + ((dx * _F(ax[0]) + dy * _F(ax[1]) + dz * _F(ax[2])) / _F(rr)) ** 2
        return np.broadcast_to(e, (z.shape[0], y.shape[1], x.shape[2]))

    def tube(self, pts, radii, pad=0.0):
        """(slices, s) for a polyline with radii per point: s = distance / local radius (< 1 inside)."""
        pts, radii = np.asarray(pts, float), np.asarray(radii, float)
        rmax = radii.max() + pad
        b = self.box(pts.min(0) - rmax, pts.max(0) + rmax)
        if b is None:
            return None, None
        sl, *_ = b
        best = np.full(tuple(s.stop - s.start for s in sl), np.inf, _F)
        for p, q, rp, rq in zip(pts[:-1], pts[1:], radii[:-1], radii[1:]):
            r = max(rp, rq)
            sb = self.box(np.minimum(p, q) - r, np.maximum(p, q) + r)
            if sb is None:
                continue
            ssl, x, y, z = sb
            d = q - p
            L2 = max(float(d @ d), 1e-6)
            px, py, pz = x - _F(p[0]), y - _F(p[1]), z - _F(p[2])
            t = np.clip((px * _F(d[0]) + py * _F(d[1]) + pz * _F(d[2])) / _F(L2), 0, 1)
            dist = np.sqrt((px - t * _F(d[0])) ** 2 + (py - t * _F(d[1])) ** 2 + (pz - t * _F(d[2])) ** 2)
            rel = tuple(slice(a.start - o.start, a.stop - o.start) for a, o in zip(ssl, sl))
            np.minimum(best[rel], dist / (_F(rp) + t * _F(rq - rp)), out=best[rel])
        return sl, best

    def vtube(self, zk, xk, yk, rk):
        """(slices, s) for a tube running along z; centre and radius interpolated between knots."""
        zk, xk, yk, rk = (np.asarray(v, float) for v in (zk, xk, yk, rk))
        order = np.argsort(zk)
        zk, xk, yk, rk = zk[order], xk[order], yk[order], rk[order]
        r = rk.max()
        b = self.box((xk.min() - r, yk.min() - r, zk[0]), (xk.max() + r, yk.max() + r, zk[-1]))
        if b is None:
            return None, None
        sl, x, y, z = b
        zz = z[:, 0, 0]
        xc, yc, rc = (np.interp(zz, zk, v).astype(_F)[:, None, None] for v in (xk, yk, rk))
        return sl, np.sqrt((x - xc) ** 2 + (y - yc) ** 2) / rc

    def paint(self, sl, mask, hu, lab=0):
        if sl is None:
            return
        h, lb = self.hu[sl], self.lab[sl]
        mask = np.broadcast_to(mask, h.shape)
        h[mask] = np.broadcast_to(np.asarray(hu, _F), h.shape)[mask] if np.ndim(hu) else hu
        lb[mask] = lab


def _smooth_field(rng, shape, cells) -> np.ndarray:
    """Unit-variance-ish smooth random field: coarse Gaussian noise spread by Gaussian weights."""
    out = rng.standard_normal(tuple(max(2, n // c + 2) for n, c in zip(shape, cells))).astype(_F)
    for axis, (n, c) in enumerate(zip(shape, cells)):
        m = out.shape[axis]
        pos = (np.arange(n) + 0.5) / n * (m - 2) + 0.5
        w = np.exp(-0.5 * ((pos[:, None] - np.arange(m)[None, :]) / 0.7) ** 2).astype(_F)
        w /= np.sqrt((w ** 2).sum(1, keepdims=True))
        out = np.moveaxis(np.tensordot(w, out, axes=([1], [axis])), 0, axis)
    return out


def torso(rng: np.random.Generator, spacing=(1.5, 1.5, 3.0), size=(320, 320, 128)):
    """One random adult thorax-abdomen CT: (Volume in HU, int16; labels uint8 [z, y, x])."""
    U = rng.uniform
    sx, sy, sz = (float(s) for s in spacing)
    nx, ny, nz = (int(n) for n in size)
    phase = _PHASES[rng.choice(3, p=[0.3, 0.2, 0.5])]
    pi = _PHASES.index(phase)

    def hu(name):
        return float(U(*_HU[name][pi]))

    muscle, fat = hu("muscle"), U(-120, -80)
    blood_a, blood_v = hu("blood_art"), hu("blood_ven")

    # ---- spine levels (z = 0 at the top of T1, superior positive) ----
    sf = U(0.84, 0.98)
    bsz = U(0.92, 1.08)
    levels, z = [], 0.0
    z_c7 = (4 + 14) * sf
    levels.append(("C7", z_c7, z_c7 - 14 * sf, 12 * bsz, 9 * bsz, 7.5, 4 * sf))
    for i in range(1, 13):
        h = (16 + 0.7 * i) * sf
        levels.append((f"T{i}", z, z - h, (13 + 0.6 * i) * bsz, (11 + 0.4 * i) * bsz, 7.5 + 0.1 * i,
                       (3.5 + 0.2 * i) * sf))
        z -= h + levels[-1][6]
    for i in range(1, 6):
        h = (25 + 0.6 * i) * sf
        levels.append((f"L{i}", z, z - h, (21 + 0.6 * i) * bsz, (15.5 + 0.3 * i) * bsz, 9.5, (8.5 + 0.4 * i) * sf))
        z -= h + levels[-1][6]
    lv = {v[0]: v for v in levels}
    mids = np.array([(v[1] + v[2]) / 2 for v in levels][::-1])

    def lvl_prof(idx):
        vals = np.array([v[idx] for v in levels][::-1])
        return lambda zq: np.interp(zq, mids, vals)

    rx_f, ry_f, rcan_f = lvl_prof(3), lvl_prof(4), lvl_prof(5)

    z_ap = U(0, 20)
    z_car = (lv["T5"][1] + lv["T5"][2]) / 2 + U(-12, 12)
    zR = lv["T10"][1] + U(-15, 20)
    zL = zR - U(10, 25)
    zkR = lv["L2"][1] + U(0, 20)  # hila near L1-L2, the left kidney a little higher
    zkL = zkR + U(5, 20)
    kid_low = zkR - 68

    z_mid = (z_ap + 8 + kid_low - 8) / 2 + U(-30, 30)
    Z = (z_mid + (np.arange(nz) - (nz - 1) / 2) * sz).astype(_F)
    x_off, y_off = U(-15, 15), U(5, 45)
    X = (x_off + (np.arange(nx) - (nx - 1) / 2) * sx).astype(_F)
    Y = (y_off + (np.arange(ny) - (ny - 1) / 2) * sy).astype(_F)
    cv = _Canvas(X, Y, Z)
    Z3, Y3, X3 = Z[:, None, None], Y[None, :, None], X[None, None, :]
    Y2, X2 = Y[:, None], X[None, :]

    # ---- body outline and wall, in polar form around (0, 0) ----
    W = U(280, 420)
    D = float(np.clip(W * U(0.6, 0.78), 190, 300))
    za = [zR - 250, zR - 100, zR, z_car, z_ap + 50]
    belly = U(0.95, 1.2)
    wt = U(0.84, 0.97) * (1 - 0.12 * (W - 280) / 140)  # chest narrower than the widest (abdominal) level
    a_anc = W / 2 * np.array([U(0.94, 1.0), U(0.92, 1.0) * (1 + wt) / 2, wt, wt * U(0.97, 1.03), wt * U(0.95, 1.05)])
    ba_anc = D * 0.52 * np.array([belly, belly * 0.97, 1.0, 0.97, 0.8])
    bp_anc = D * 0.48 * np.array([1, 1, 1, 1, 0.95])

    def a_b(zq):
        return np.interp(zq, za, a_anc)

    def b_a(zq):
        return np.interp(zq, za, ba_anc)

    def b_p(zq):
        return np.interp(zq, za, bp_anc)

    p_ant, p_post = U(2.2, 3.0), U(3.2, 5.0)
    harm = [(U(-0.015, 0.015), k, U(0, 2 * np.pi)) for k in (2, 3, 4)]
    f0 = float(np.clip(5 + (W - 280) / 140 * 30 + rng.normal(0, 5), 5, 40))
    f_abd = U(0.0, 0.5)
    g1, g2, ph1, ph2 = U(0, 0.2), U(0, 0.15), U(0, 2 * np.pi), U(0, 2 * np.pi)
    t_lat0 = U(10, 16) + 0.05 * (W - 280)
    pec = U(10, 25)
    d_canal = U(42, 52)

    def fz(zq):
        return 1 + f_abd * (1 - _smoothstep((zq - (zR - 120)) / 80))

    def t_fat(th, zq):
        g = 1 + g1 * np.cos(th - ph1) + g2 * np.cos(2 * th - ph2)
        return f0 * fz(zq) * g * (1 - 0.35 * np.maximum(np.sin(th), 0) ** 2)

    def t_lat(zq):
        return t_lat0 + 55 * _smoothstep((zq - (z_ap - 90)) / 90)

    def y_canal(zq):
        return b_p(zq) - t_fat(np.pi / 2, zq) - d_canal - 4 * np.sin((zq - zR) / 160)

    def y_vb(zq):
        return y_canal(zq) - rcan_f(zq) - 2 - ry_f(zq)

    def wall(th, zq):
        c, s = np.abs(np.cos(th)), np.abs(np.sin(th))
        post = np.sin(th) > 0
        p = np.where(post, p_post, p_ant)
        bb = np.where(post, b_p(zq), b_a(zq))
        R = ((c / a_b(zq)) ** p + (s / bb) ** p) ** (-1 / p)
        R = R * (1 + sum(a * np.cos(k * th + ph) for a, k, ph in harm))
        tf = t_fat(th, zq)
        r_cav_mid = y_canal(zq) + 3
        t_post = b_p(zq) - t_fat(np.pi / 2, zq) - r_cav_mid
        thorax = _smoothstep((zq - zR + 40) / 60)
        tm = (t_lat(zq) + (t_post - t_lat(zq)) * np.maximum(np.sin(th), 0) ** 6
              + pec * thorax * np.maximum(-np.sin(2 * th), 0) * (np.sin(th) < 0))
        return R, R - tf, R - tf - tm

    theta = np.arctan2(Y2, X2).astype(_F)
    rho = np.hypot(Y2, X2).astype(_F)
    # tabulate the wall over 4096 directions per slice, then look each pixel's direction up
    n_ang = 4096
    angles = (np.arange(n_ang) + 0.5) / n_ang * 2 * np.pi - np.pi
    a_idx = np.clip(((theta + np.pi) / (2 * np.pi) * n_ang).astype(np.int64), 0, n_ang - 1)
    Rb, Rf, Rc = (t.astype(_F)[:, a_idx] for t in wall(angles[None, :], Z[:, None].astype(float)))

    def cav_at(th, zq):  # cavity radius in a given direction, for placing organs
        return float(wall(np.float64(th), np.float64(zq))[2])

    # ---- table and pad under the back ----
    y_back = float(max(b_p(Z.astype(float)).max(), 0))
    Rcurve, pad_t, half_w = U(800, 2000), U(25, 60), U(200, 250)
    lift = X2 ** 2 / (2 * Rcurve)
    y_pad = y_back - 2 - lift
    inside_w = np.abs(X2) < half_w
    pad = inside_w & (Y2 >= y_pad) & (Y2 < y_pad + pad_t)
    top = inside_w & (Y2 >= y_pad + pad_t) & (Y2 < y_pad + pad_t + 5)
    core = inside_w & (Y2 >= y_pad + pad_t + 5) & (Y2 < y_pad + pad_t + 40)
    bottom = inside_w & (Y2 >= y_pad + pad_t + 40) & (Y2 < y_pad + pad_t + 45)
    cv.hu[:, pad] = U(-850, -600)
    cv.hu[:, top | bottom] = U(150, 400)
    cv.hu[:, core] = U(-980, -900)

    # ---- body layers ----
    body = rho < Rb
    cv.hu[body] = fat
    cv.hu[rho < Rf] = muscle
    cav = rho < Rc
    cv.hu[cav] = fat + U(-10, 15)
    cv.hu[body & (rho > Rb - 1.6)] = U(10, 50)

    # ---- arms beside the body (most chest CTs have them raised, out of the field) ----
    if rng.random() < 0.3:
        r_arm = U(38, 55)
        y_arm = y_pad.min() - r_arm + U(5, 30)
        z_elbow = lv["L1"][1] + U(-30, 30)
        for side in (-1, 1):
            xa = side * (a_b(z_mid) + U(0, 12) + r_arm)
            sl, s = cv.vtube([Z[0] - 10, Z[-1] + 10], [xa, xa], [y_arm, y_arm], [r_arm, r_arm])
            if sl is None:
                continue
            cv.paint(sl, s < 1, fat)
            cv.paint(sl, s < 1 - 0.6 * f0 / r_arm, muscle)
            cv.paint(sl, (s < 1) & (s > 1 - 1.6 / r_arm), U(10, 50))
            # humerus above the elbow, radius and ulna below it
            bones = [(xa - side * 5, y_arm, U(10, 13), True), (xa - side * 12, y_arm - 5, U(6, 8), False),
                     (xa + side * 8, y_arm + 6, U(6, 8), False)]
            cort, marrow = U(900, 1300), U(-60, 60)
            for bx, by, br, upper in bones:
                bsl, bs = cv.vtube([Z[0] - 10, Z[-1] + 10], [bx, bx], [by, by], [br, br])
                if bsl is None:
                    continue
                zb = cv.Z[bsl[0]][:, None, None]
                zsel = zb >= z_elbow if upper else zb < z_elbow
                cv.paint(bsl, (bs < 1) & zsel, cort, BONE)
                cv.paint(bsl, (bs < 1 - 3.5 / br) & zsel, marrow, BONE)

    # ---- diaphragm: right dome higher, deeper posterior recesses ----
    aR, aL = cav_at(np.pi, zR), cav_at(0.0, zL)
    xR, xL, yd = -0.45 * aR, 0.45 * aL, U(-10, 10)
    kx, k_post, k_ant = U(0.006, 0.009), U(0.008, 0.012), U(0.003, 0.005)
    cap_post, cap_ant = U(70, 95), U(35, 55)  # the recesses end where the diaphragm inserts
    z_cen = zL - U(10, 18)

    def diaphragm(xq, yq):
        ky = np.where(yq > yd, k_post, k_ant)
        cap = np.where(yq > yd, cap_post, cap_ant)
        domes = []
        for top, xc in ((zR, xR), (zL, xL)):
            q = kx * (xq - xc) ** 2 + ky * (yq - yd) ** 2
            domes.append(top - q / (1 + q / cap))
        central = z_cen - 0.002 * (xq - 10) ** 2 - 0.003 * (yq + 30) ** 2
        return np.maximum(np.maximum(domes[0], domes[1]), central)

    zd2 = diaphragm(X2, Y2).astype(_F)
    below = Z3 < zd2[None] - 4
    abd = cav & below
    cv.hu[cav & ~below & (Z3 < zd2[None] + 1)] = muscle  # the diaphragm itself

    def region(sl):
        return abd[sl]

    yvb_z = y_vb(Z.astype(float)).astype(_F)[:, None, None]
    ry_z = ry_f(Z.astype(float)).astype(_F)[:, None, None]
    rx_z = rx_f(Z.astype(float)).astype(_F)[:, None, None]

    # ---- bowel: colon frame and small-bowel loops (before the solid organs, which carve them) ----
    liver_h = U(135, 170)
    aRk, aLk = cav_at(np.pi, zkR), cav_at(0.0, zkR)
    bA = cav_at(-np.pi / 2, zkR)
    z_low = min(float(Z[0]), kid_low) - 40
    wall_bw = hu("bowel_wall")
    hepatic_flex = zR - liver_h * 0.85
    colon = [(-0.72 * aRk, U(-20, 10), z_low), (-0.72 * aRk, U(-20, 10), hepatic_flex - 20),
             (-0.6 * aRk, -0.4 * bA, hepatic_flex), (0.0, -0.7 * bA, hepatic_flex - U(20, 60)),
             (0.6 * aLk, -0.3 * bA, zL - 85), (0.75 * aLk, U(0, 25), zL - 110), (0.75 * aLk, U(0, 25), z_low)]
    colon_r = [U(18, 28) for _ in colon]
    sl, s = cv.tube(colon, colon_r)
    if sl is not None:
        reg = region(sl)
        cv.paint(sl, (s < 1) & reg, wall_bw)
        stool = U(-90, 30) + 60 * rng.standard_normal(s.shape).astype(_F)
        stool = ndimage.gaussian_filter(stool, 1.0)
        cv.paint(sl, (s < 0.88) & reg, stool, _COLON)
    pts = np.array(colon)
    for _ in range(rng.integers(8, 20)):
        i = rng.integers(0, len(pts) - 1)
        c = pts[i] + U(0, 1) * (pts[i + 1] - pts[i]) + (0, -8, 0)
        sl2, e = cv.ellipsoid(c, [U(6, 16)] * 3)
        if sl2 is not None:
            cv.paint(sl2, (e < 1) & (cv.lab[sl2] == _COLON), U(-1000, -950), _COLON)
    oral = rng.random() < 0.25
    for _ in range(rng.integers(5, 11)):
        p = np.array([U(-0.45, 0.45) * aRk, U(-0.8 * bA, -10), U(z_low + 30, zR - liver_h * 0.65)])
        d = _unit(rng.normal(0, 1, 3))
        path = [p.copy()]
        for _ in range(rng.integers(4, 8)):
            d = _unit(d + rng.normal(0, 0.7, 3))
            p = p + d * U(18, 30)
            path.append(p.copy())
        r = U(8, 14)
        sl, s = cv.tube(path, [r] * len(path))
        if sl is None:
            continue
        reg = region(sl)
        cv.paint(sl, (s < 1) & reg, wall_bw)
        content = U(200, 450) if oral else U(0, 25)
        cv.paint(sl, (s < 1 - 2.5 / r) & reg, content, _LOOP)
        if rng.random() < 0.3:
            c = path[rng.integers(0, len(path))] + (0, -0.4 * r, 0)
            sl2, e = cv.ellipsoid(c, [0.6 * r] * 3)
            if sl2 is not None:
                cv.paint(sl2, (e < 1) & (cv.lab[sl2] == _LOOP), U(-1000, -950), _LOOP)

    # kidneys: hilum facing anteromedially, upper pole medial and posterior
    kidneys = []
    for side, zk in ((-1, zkR), (1, zkL)):
        Lk, Wk, Tk = U(50, 62), U(27, 33), U(22, 27)
        kc = np.array([side * (rx_f(zk) + U(38, 50)), y_vb(zk) + U(-5, 10), zk])
        alpha, beta = np.radians(U(8, 20)), np.radians(U(25, 45))
        long_ax = _unit((-side * np.sin(alpha), U(0.05, 0.2), np.cos(alpha)))
        hdir = np.array([-side * np.cos(beta), -np.sin(beta), 0.0])
        kidneys.append((side, zk, Lk, Wk, Tk, kc, _frame(long_ax, hdir)))

    # ---- liver: under the right dome, left lobe tapering across the midline ----
    x_tip = U(0.25, 0.55) * aL
    _, _, kLk, kWk, kTk, kkc, kax = kidneys[0]

    def liver_shape(x, y, z, h, yv, ryv, rxv):
        u = np.clip((x + aR) / (x_tip + aR), 0, 1)
        zbot = zR - h * (1 - 0.75 * u ** 0.8) + 0.12 * h * np.clip(-y / 100, -1, 1)
        spine_col = (np.abs(x) < rxv + 10) & (y > yv - ryv - 12)
        left_post = (x > -10) & (y > yv - ryv - 25)
        kid = _Canvas.ellipsoid_on((None, x, y, z), kkc, [kLk + 8, kWk + 8, kTk + 8], kax) < 1
        below_kid = (y > kkc[1] - 30) & (z < kkc[2] + 10) & (x > kkc[0] - 45)  # hepatorenal recess
        return (z > zbot) & (x < x_tip) & ~spine_col & ~left_post & ~kid & ~below_kid

    # liver height chosen so the volume is adult-sized whatever the cavity, judged on a coarse
    # grid of its own (the field of view may cut the liver)
    gx, gy, gz = np.arange(-aR - 40, 0.8 * aL, 4.0), np.arange(-200, 200, 4.0), np.arange(zR - 260, zR + 5, 4.0)
    cx, cy, cz = gx[None, None, :], gy[None, :, None], gz[:, None, None]
    coarse = (np.hypot(cx, cy) < wall(np.arctan2(cy, cx), cz)[2]) & (cz < diaphragm(cx, cy) - 9)
    target = U(1350, 1950) * 1.08 * 1000 / 64.0  # a little goes to the gallbladder, IVC and vessels
    for _ in range(4):
        n = np.count_nonzero(coarse & liver_shape(cx, cy, cz, liver_h, y_vb(cz), ry_f(cz), rx_f(cz)))
        if liver_h >= 209 and n < target:  # a small cavity: a wider left lobe rather than a longer liver
            x_tip = min(x_tip + 0.12 * aL, 0.8 * aL)
        liver_h = float(np.clip(liver_h * target / max(n, 1), 110, 210))
    sl, x, y, z = cv.box((-aR - 40, -200, zR - liver_h - 40), (x_tip, 200, zR + 5))
    liver = region(sl) & (z < zd2[sl[1:]] - 5) & liver_shape(x, y, z, liver_h, yvb_z[sl[0]], ry_z[sl[0]],
                                                              rx_z[sl[0]])
    c_liv = hu("liver")
    cv.paint(sl, liver, c_liv, LIVER)

    def in_liver(sl2):  # intrahepatic vessels only where the liver is
        return cv.lab[sl2] == LIVER

    gb_c = (U(-60, -30), U(-60, -20), zR - liver_h * 0.75 + 20)
    sl2, e = cv.ellipsoid(gb_c, [U(14, 20), U(14, 20), U(30, 42)], _frame((0.3, -0.4, 1), (1, 0, 0)))
    cv.paint(sl2, (e < 1) & (region(sl2) if sl2 is not None else False), U(0, 20))
    ivc_x = -(rx_f(zR) + U(8, 14))
    vhu = hu("liver_vessel")
    porta = np.array([-40.0, y_vb(zR - 70) - ry_f(zR - 70) - 30, zR - liver_h * 0.45])
    conf = np.array([0.0, y_vb(zkR + 40) - ry_f(zkR + 40) - 35, zkR + 40])
    sl2, s = cv.tube([conf, porta], [U(6, 8)] * 2)
    cv.paint(sl2, (s < 1) & (region(sl2) if sl2 is not None else False), vhu)
    for tgt, r in (((-95, 0, 25), 6), ((10, -35, 25), 5), ((-70, -50, 5), 4.5), ((-90, 40, -10), 4.5)):
        end = porta + np.array(tgt, float) + rng.normal(0, 6, 3)
        sl2, s = cv.tube([porta, end], [r, r * 0.6])
        if sl2 is not None:
            cv.paint(sl2, (s < 1) & in_liver(sl2), vhu, LIVER)
    hv_root = np.array([ivc_x, y_vb(zR) - ry_f(zR) - 15, zR - 15])
    for tgt in ((-110, 0, -15), (-45, -60, -5), (15, -50, 0)):
        end = np.array([tgt[0], tgt[1], zR + tgt[2] - 10]) + rng.normal(0, 6, 3)
        sl2, s = cv.tube([hv_root, end], [U(4.5, 6), 2.5])
        if sl2 is not None:
            cv.paint(sl2, (s < 1) & in_liver(sl2), vhu, LIVER)

    # ---- spleen: posterolateral under the left dome ----
    th_s = U(np.radians(25), np.radians(55))
    zs = zL - U(45, 65)
    rad_s, tan_s = np.array([np.cos(th_s), np.sin(th_s), 0]), np.array([-np.sin(th_s), np.cos(th_s), 0])
    T_s = U(18, 25)
    c_s = rad_s * (cav_at(th_s, zs) - T_s - 4) + (0, 0, zs)
    ax_s = _frame(0.6 * tan_s + (0, 0, 0.8), rad_s)
    sl2, e = cv.ellipsoid(c_s, [U(50, 65), T_s, U(30, 40)], ax_s)
    cv.paint(sl2, (e < 1) & (region(sl2) if sl2 is not None else False), hu("spleen"))

    # ---- stomach: fundus under the left dome, body and antrum sweeping to the right ----
    st = [(0.35 * aL, U(-5, 20), zL - 20), (0.35 * aL, U(-5, 20), zL - 45),
          (0.4 * aL - 10, -25, zL - 75), (0.1 * aL, -55, zL - 100), (-25, -40, zL - 95)]
    st_r = np.array([U(35, 45), U(38, 45), U(28, 36), U(20, 26), 12])
    sl2, s = cv.tube(st, st_r)
    if sl2 is not None:
        reg = region(sl2)
        cv.paint(sl2, (s < 1) & reg, wall_bw)
        _, s_in = cv.tube(st, st_r - 4, pad=4)
        lumen = (s_in < 1) & reg
        ys = np.array([p[1] for p in st])
        y_level = (ys - st_r).min() + U(0.15, 0.55) * ((ys + st_r).max() - (ys - st_r).min())
        yy = cv.Y[sl2[1]][None, :, None]
        food = U(-20, 40) + (25 * rng.standard_normal(s.shape).astype(_F) if rng.random() < 0.4 else 0)
        cv.paint(sl2, lumen, np.where(yy < y_level, _F(U(-1000, -980)), food))

    # ---- pancreas ----
    z_p = zkR + U(20, 35)
    yf = y_vb(z_p) - ry_f(z_p)
    panc = [(-U(25, 35), yf - 40, z_p - 10), (0, yf - 38, z_p), (35, yf - 25, z_p + 10),
            (0.55 * aL, y_vb(z_p) + 5, z_p + 25)]
    sl2, s = cv.tube(panc, [U(12, 16), 11, 10, 9])
    cv.paint(sl2, (s < 1) & (region(sl2) if sl2 is not None else False), hu("pancreas"))

    # ---- psoas muscles, then the kidneys in their perirenal fat ----
    z_t12 = lv["T12"][2]
    for side in (-1, 1):
        zk = [z_low, z_t12 - 120, z_t12]
        rk = [24, 18, 6]
        xk = [side * (rx_f(q) + 0.7 * r) for q, r in zip(zk, rk)]
        yk = [y_vb(q) + 0.2 * ry_f(q) for q in zk]
        sl2, s = cv.vtube(zk, xk, yk, [r * U(0.9, 1.1) for r in rk])
        cv.paint(sl2, (s < 1) & (region(sl2) if sl2 is not None else False), muscle)
    cort, med = hu("cortex"), hu("medulla")
    for side, zk, Lk, Wk, Tk, kc, axk in kidneys:
        sb = cv.box(kc - (Lk + 6), kc + (Lk + 6))
        if sb is None:
            continue
        sl2, x, y, z = sb
        e = cv.ellipsoid_on(sb, kc, [Lk + 6, Wk + 6, Tk + 6], axk)
        reg = abd[sl2]
        cv.paint(sl2, (e < 1) & reg, fat)
        e = cv.ellipsoid_on(sb, kc, [Lk, Wk, Tk], axk)
        sinus_c = kc + axk[1] * Wk * 0.6
        es = cv.ellipsoid_on(sb, sinus_c, [0.55 * Lk, 0.6 * Wk, 0.5 * Tk], axk)
        dk = np.stack([np.broadcast_to(v, e.shape) for v in (x - _F(kc[0]), y - _F(kc[1]), z - _F(kc[2]))])
        loc = [dk[0] * _F(a[0]) + dk[1] * _F(a[1]) + dk[2] * _F(a[2]) for a in axk]
        ct = U(5, 8)
        paren = (e < 1) & (es >= 1) & reg
        cortex = paren & ((np.sqrt(e) > 1 - ct / Wk) | (np.sqrt(es) < 1 + ct / (0.6 * Wk))
                          | (np.cos(4 * np.arctan2(loc[2], loc[1]) + U(0, 6)) > 0.7))
        cv.paint(sl2, paren, med, KIDNEY)
        cv.paint(sl2, cortex, cort, KIDNEY)
        cv.paint(sl2, (e < 1) & (es < 1) & reg, fat)
        pel_c = kc + axk[1] * Wk * 0.45
        sl3, ep = cv.ellipsoid(pel_c, [0.3 * Lk, 0.3 * Wk, 0.25 * Tk], axk)
        cv.paint(sl3, ep < 1, U(0, 20))
        hil = kc + axk[1] * Wk * 1.05
        vein_end = np.array([ivc_x, y_vb(zk) - ry_f(zk) - 10, zk + 5]) if side < 0 else \
            np.array([ivc_x, y_vb(zk) - ry_f(zk) - 30, zk + 10])
        path = [kc + axk[1] * Wk * 0.5, hil, vein_end] if side < 0 else \
            [kc + axk[1] * Wk * 0.5, hil, (10, y_vb(zk) - ry_f(zk) - 30, zk + 10), vein_end]
        sl3, s = cv.tube(path, [4] + [U(4.5, 6)] * (len(path) - 1))
        cv.paint(sl3, (s < 1) & (cv.lab[sl3] != KIDNEY) if sl3 is not None else False, hu("ivc"))

    # ---- lungs: cavity above the diaphragm, below the apical domes, outside the mediastinum ----
    hc_long, hc_B, hc_C = U(58, 70), U(48, 58), U(42, 52)
    ax_h = _frame(_unit((0.55, -0.45, -0.5) + rng.normal(0, 0.08, 3)), (0, -1, 0))
    ext_z = np.sqrt(sum((r * a[2]) ** 2 for r, a in zip((hc_long, hc_B, hc_C), ax_h)))
    ext_y = np.sqrt(sum((r * a[1]) ** 2 for r, a in zip((hc_long, hc_B, hc_C), ax_h)))
    zh = zL - 12 + 0.8 * ext_z
    y_back_h = y_vb(zh) - ry_f(zh) - 12
    room = y_back_h + cav_at(-np.pi / 2, zh) + 5  # sternum to the oesophagus, along y
    shrink = float(np.clip(room / (2 * ext_y), 0.8, 1.0))
    hc_long, hc_B, hc_C, ext_y, ext_z = (v * shrink for v in (hc_long, hc_B, hc_C, ext_y, ext_z))
    zh = zL - 12 + 0.8 * ext_z
    hc = np.array([U(10, 30), y_back_h - ext_y, zh])
    heart_r = [hc_long, hc_B, hc_C]

    z_arch = z_car + U(15, 30)
    x_asc, y_asc = U(-15, 0), y_vb(z_car) - ry_f(z_car) - U(45, 60)
    r_asc, r_desc, r_abd = U(14, 17), U(11, 14), U(9, 12)
    zt = z_arch - 25
    x_dt, y_dt = rx_f(zt) + r_desc - 3, y_vb(zt) - 0.3 * ry_f(zt)
    root = hc - 0.5 * hc_long * ax_h[0]
    arch = [root, (x_asc, y_asc, z_arch - 20), (x_asc + 8, y_asc + 12, z_arch - 2),
            (8, (y_asc + y_dt) / 2, z_arch + 4), (x_dt - 4, y_dt - 14, z_arch - 4), (x_dt, y_dt, zt)]
    arch_r = [r_asc, r_asc, r_asc - 1, r_desc + 1, r_desc, r_desc]
    zk_ao = [z_low, zR - 70, zR - 10, zt + 2]
    desc_x = [8, 8, rx_f(zR - 10) + r_desc - 3, x_dt]
    desc_y = [y_vb(z_low) - ry_f(z_low) - r_abd + 2, y_vb(zR - 70) - ry_f(zR - 70) - r_abd + 2,
              y_vb(zR - 10) - 0.3 * ry_f(zR - 10), y_dt]
    desc_r = [r_abd, r_abd, r_desc, r_desc]
    pa_bif = np.array([U(10, 25), y_asc + 15, z_car - U(0, 10)])
    pa_start = hc + 0.1 * hc_long * ax_h[0] + 0.45 * hc_B * _unit((0.3, -1, 0.6))
    hil_r = np.array([-U(55, 70), y_vb(z_car) - ry_f(z_car) - 25, z_car - 25])
    hil_l = np.array([U(55, 70), y_vb(z_car) - ry_f(z_car) - 15, z_car - 15])
    pa = [([pa_start, pa_bif], [13, 13]),
          ([pa_bif, (-5, y_asc + 25, z_car - 12), hil_r], [10, 10, 8]),
          ([pa_bif, (40, pa_bif[1] + 25, z_car - 2), hil_l], [10, 9, 8])]
    svc_x, svc_y = x_asc - U(22, 30), y_asc + U(0, 12)
    z_top = float(Z[-1]) + 30
    x_tr = U(-5, 2)
    r_tr, r_es = U(8.5, 11.5), U(7, 10)

    def y_es(zq):
        return y_vb(zq) - ry_f(zq) - r_es - 1

    def y_tr(zq):
        return y_es(zq) - r_es - r_tr - 1

    car = np.array([x_tr, y_tr(z_car), z_car])
    bronchi = [([car, car + (-22, 5, -15), car + (-30, 10, -40)], [7.5, 7, 6]),
               ([car, car + (35, 8, -25), car + (45, 15, -45)], [6.5, 6, 5.5])]
    great = [(x_asc + 5, y_asc + 10, 6), (x_asc + 15, y_asc + 20, 4.5), (x_asc + 27, y_asc + 30, 5)]

    med = np.zeros(cv.hu.shape, bool)

    def mark(sl2, m):
        if sl2 is not None:
            med[sl2] |= m

    sl2, e = cv.ellipsoid(hc, [r + 4 for r in heart_r], ax_h)
    mark(sl2, e < 1)
    for pts_, rr in [(arch, [r + 3 for r in arch_r])] + [(p, [r + 3 for r in rr_]) for p, rr_ in pa] + \
            [(p, [r + 2 for r in rr_]) for p, rr_ in bronchi]:
        sl2, s = cv.tube(pts_, rr)
        mark(sl2, s < 1)
    sl2, s = cv.vtube(zk_ao, desc_x, desc_y, [r + 3 for r in desc_r])
    mark(sl2, s < 1)
    sl2, s = cv.vtube([zR - 5, z_top], [svc_x] * 2, [svc_y] * 2, [13, 13])
    mark(sl2, s < 1)
    sl2, s = cv.vtube([z_car, z_top], [x_tr] * 2, [y_tr(z_car), y_tr(z_top)], [r_tr + 4] * 2)
    mark(sl2, s < 1)
    sl2, s = cv.vtube([zR - 10, z_top], [U(0, 8), U(0, 8)], [y_es(zR - 10), y_es(z_top)], [r_es + 3] * 2)
    mark(sl2, s < 1)
    for gx, gy, gr in great:
        sl2, s = cv.vtube([z_arch, z_top], [gx, gx], [gy, gy], [gr + 3] * 2)
        mark(sl2, s < 1)
    sl2, s = cv.vtube([zR - 20, zR + 40], [ivc_x] * 2, [y_vb(zR) - ry_f(zR) - 15] * 2, [16, 16])
    mark(sl2, s < 1)
    x_mc, w_col = U(0, 10), U(8, 14)
    med |= np.abs(X3 - x_mc) < w_col
    med |= (np.abs(X3) < rx_z + 6) & (Y3 > yvb_z - ry_z - 4)

    x_lc = 0.5 * cav_at(0.0, z_ap - 40)
    y_lc, k_ap = U(0, 20), U(0.010, 0.016)
    ap_r = z_ap + U(-8, 5) - k_ap * ((X2 + x_lc) ** 2 + (Y2 - y_lc) ** 2)
    ap_l = z_ap + U(-8, 5) - k_ap * ((X2 - x_lc) ** 2 + (Y2 - y_lc) ** 2)
    apex = np.where(X2 < x_mc, ap_r, ap_l).astype(_F)
    lung = cav & (Z3 > zd2[None] + 1) & (Z3 < apex[None]) & ~med
    l_base, l_grad = U(-880, -800), U(20, 60)
    cv.hu[lung] = np.broadcast_to(l_base + l_grad * np.clip(Y3 / 100, -1.2, 1.2), lung.shape)[lung]
    cv.lab[lung] = LUNG

    lv_hu = hu("lung_vessel")
    for hil, side in ((hil_r, -1), (hil_l, 1)):
        stack = [(hil, _unit((side * U(0.3, 1), U(-0.8, 0.8), U(-1, 0.7))), U(5, 6.5), U(40, 55), 0)
                 for _ in range(rng.integers(6, 9))]
        stack += [(hil + (0, 8, 0), _unit((side * U(0.3, 1), U(-0.5, 0.8), U(-1, 0.5))), 4.5, 40, -1)
                  for _ in range(3)]  # airways (-1 marks them)
        while stack:
            p, d, r, L, lev = stack.pop()
            q = p + d * L
            sl2, s = cv.tube([p, q], [r, 0.85 * r])
            if sl2 is not None:
                in_lung = cv.lab[sl2] == LUNG
                if lev < 0:
                    cv.paint(sl2, (s < 1) & in_lung, U(20, 60), LUNG)
                    cv.paint(sl2, (s < 0.6) & in_lung, U(-1000, -960), LUNG)
                else:
                    cv.paint(sl2, (s < 1) & in_lung, lv_hu, LUNG)
            depth = abs(lev)
            if depth < 3 and r > 1.6:
                for _ in range(rng.integers(2, 4)):
                    stack.append((q, _unit(d + rng.normal(0, 0.5, 3)), r * 0.72, L * 0.75,
                                  (depth + 1) * (1 if lev >= 0 else -1)))

    # ---- mediastinum: heart and chambers, great vessels, airway, oesophagus ----
    hb = cv.box(hc - max(heart_r) - 3, hc + max(heart_r) + 3)
    sl2 = hb[0]
    e = cv.ellipsoid_on(hb, hc, [r + 3 for r in heart_r], ax_h)
    above = Z3[sl2[0]] > zd2[sl2[1:]] - 1
    cv.paint(sl2, (e < 1) & above & cav[sl2], fat)
    e_in = cv.ellipsoid_on(hb, hc, heart_r, ax_h)
    above = above & cav[sl2]
    cv.paint(sl2, (e_in < 1) & above, hu("myocardium"))
    for off, radii, blood in (
            (0.2 * hc_long * ax_h[0] + 0.25 * hc_B * _unit((1, 0.6, 0)), (0.55, 0.33, 0.33), blood_a),
            (0.1 * hc_long * ax_h[0] + 0.35 * hc_B * _unit((-0.6, -1, 0)), (0.5, 0.25, 0.35), blood_v),
            (-0.5 * hc_long * ax_h[0] + 0.3 * hc_B * _unit((-1, 0, 0)), (0.3, 0.35, 0.35), blood_v),
            (-0.55 * hc_long * ax_h[0] + 0.4 * hc_B * _unit((0.2, 1, 0.3)), (0.3, 0.35, 0.35), blood_a)):
        ec = cv.ellipsoid_on(hb, hc + off, [f * r for f, r in zip(radii, heart_r)], ax_h)
        cv.paint(sl2, (ec < 1) & (e_in < 0.8) & above, blood)
    sl2, s = cv.tube(arch, arch_r)
    cv.paint(sl2, s < 1, blood_a)
    sl2, s = cv.vtube(zk_ao, desc_x, desc_y, desc_r)
    cv.paint(sl2, (s < 1) & (cv.lab[sl2] != KIDNEY) if sl2 is not None else False, blood_a)
    for pts_, rr in pa:
        sl2, s = cv.tube(pts_, rr)
        cv.paint(sl2, s < 1, blood_v)
    sl2, s = cv.vtube([zR + 20, z_top], [svc_x] * 2, [svc_y] * 2, [U(9, 11)] * 2)
    cv.paint(sl2, s < 1, blood_v)
    for gx, gy, gr in great:
        sl2, s = cv.vtube([z_arch, z_top], [gx, gx], [gy, gy], [gr] * 2)
        cv.paint(sl2, s < 1, blood_a)
    y_ivc_lo = y_vb(z_low) - ry_f(z_low) - 12
    sl2, s = cv.vtube([z_low, zR - 60, zR + 25], [ivc_x] * 3,
                      [y_ivc_lo, y_vb(zR - 60) - ry_f(zR - 60) - 12, y_vb(zR) - ry_f(zR) - 22], [U(10, 13)] * 3)
    cv.paint(sl2, (s < 1) & (cv.lab[sl2] != KIDNEY) if sl2 is not None else False, hu("ivc"))
    sl2, s = cv.vtube([z_car, z_top], [x_tr] * 2, [y_tr(z_car), y_tr(z_top)], [r_tr + 2] * 2)
    cv.paint(sl2, s < 1, U(20, 60))
    cv.paint(sl2, s < r_tr / (r_tr + 2), U(-1000, -980))
    for pts_, rr in bronchi:
        sl2, s = cv.tube(pts_, [r + 1.5 for r in rr])
        if sl2 is not None:
            cv.paint(sl2, s < 1, U(20, 60))
            _, s2 = cv.tube(pts_, rr, pad=1.5)
            cv.paint(sl2, s2 < 1, U(-1000, -980))
    x_es = U(0, 8)
    cardia = np.array([st[1][0] - 15, st[1][1] - 5, zL - 35])
    sl2, s = cv.vtube([zR - 10, z_top], [x_es + 10, x_es], [y_es(zR - 10), y_es(z_top)], [r_es] * 2)
    cv.paint(sl2, s < 1, U(35, 50))
    if rng.random() < 0.4:
        cv.paint(sl2, s < 0.3, U(-1000, -900))
    sl2, s = cv.tube([(x_es + 10, y_es(zR - 10), zR - 10), cardia], [r_es, r_es])
    cv.paint(sl2, (s < 1) & (region(sl2) | (cv.lab[sl2] == 0)) if sl2 is not None else False, U(35, 50))

    # ---- bones in the wall (ribs, cartilage, sternum, scapulae) via a precomputed shell ----
    shell = (rho < Rc + 36) & (rho > Rc - 3) & body
    iz, iy, ix = np.nonzero(shell)
    del shell
    sh_rho, sh_rc, sh_rf = rho[iy, ix], Rc[iz, iy, ix], Rf[iz, iy, ix]
    sh_x, sh_y, sh_z = X[ix], Y[iy], Z[iz]
    sh_phi = np.arctan2(np.abs(sh_x), sh_y)  # 0 posterior midline, pi anterior midline

    def band(zlo, zhi):
        k0, k1 = np.searchsorted(Z, zlo), np.searchsorted(Z, zhi, side="right")
        return slice(int(np.searchsorted(iz, k0)), int(np.searchsorted(iz, k1)))

    def put(b, m, value, label):
        idx = (iz[b][m], iy[b][m], ix[b][m])
        cv.hu[idx] = value if np.ndim(value) == 0 else value[m]
        cv.lab[idx] = label

    rib_cort, rib_core, cart = U(550, 850), U(150, 300), U(90, 150)
    st_top = lv["T2"][2] + U(-5, 5)
    st_bot = st_top - U(160, 200)
    for k in range(1, 13):
        name, ztop, zbot = lv[f"T{k}"][:3]
        z_post = ztop - 0.3 * (ztop - zbot)
        tp_len = 40 - 1.2 * k
        phi0 = np.arctan2(tp_len, y_canal(z_post) + 0.35 * tp_len - rcan_f(z_post))
        drop = sf * (50 + 7 * k) if k <= 10 else sf * 20
        phi_end = np.radians({11: 95, 12: 75}.get(k, U(125, 140) if k <= 7 else U(118, 130)))
        phi_cart = np.radians(178 if k <= 7 else 150) if k <= 10 else phi_end
        hr, tr = U(9, 12) * (1.25 if k == 1 else 1), U(5.5, 7.5)
        b = band(z_post - drop - hr, z_post + hr)
        phi = sh_phi[b]
        t = np.clip((phi - phi0) / (np.pi - phi0), 0, 1)
        zc = z_post - drop * t ** 1.5
        e = ((sh_rho[b] - (sh_rc[b] + 1 + tr / 2)) / (tr / 2)) ** 2 + ((sh_z[b] - zc) / (hr / 2)) ** 2
        bone = (e < 1) & (phi >= phi0) & (phi <= phi_end)
        put(b, bone, rib_cort, BONE)
        put(b, bone & (e < 0.4), rib_core, BONE)
        put(b, (e < 1) & (phi > phi_end) & (phi <= phi_cart), cart, 0)
    b = band(st_bot, st_top)
    zz = sh_z[b]
    frac = (zz - st_bot) / (st_top - st_bot)
    w_st = np.interp(frac, [0, 0.1, 0.7, 0.75, 1], [6, 12, 15, 26, 28])
    t_st = np.interp(frac, [0, 0.1, 1], [6, 10, 13])
    depth = sh_rho[b] - sh_rc[b] - 0.5
    ster = (sh_y[b] < 0) & (np.abs(sh_x[b]) < w_st) & (depth > 0) & (depth < t_st)
    put(b, ster, U(500, 750), BONE)
    put(b, ster & (depth > 1.5) & (depth < t_st - 1.5) & (np.abs(sh_x[b]) < w_st - 1.5), U(250, 400), BONE)
    sc_top = lv["T1"][2] + U(-10, 10)
    sc_bot = lv["T7"][2] + U(-15, 15)
    phi_m, rot = np.radians(U(22, 32)), np.radians(U(0, 15))
    b = band(sc_bot, sc_top)
    frac = np.clip((sh_z[b] - sc_bot) / (sc_top - sc_bot), 0, 1)
    wphi = np.radians(6 + 42 * frac ** 0.8)
    lo_phi = phi_m + rot * (1 - frac)
    tsc = 4 + 6 * (sh_phi[b] > lo_phi + wphi - np.radians(8)) + 8 * ((frac > 0.7) & (frac < 0.85))
    rc_sc = np.minimum(sh_rc[b] + 13, sh_rf[b] - 5)
    scap = (sh_phi[b] >= lo_phi) & (sh_phi[b] <= lo_phi + wphi) & (np.abs(sh_rho[b] - rc_sc - tsc / 2 + 2) < tsc / 2)
    put(b, scap, U(400, 750), BONE)

    z_cl = st_top + U(0, 10)
    yF = -cav_at(-np.pi / 2, z_cl)
    for sd in (-1, 1):
        pts_ = [(sd * 20, yF - 6, z_cl - 5), (sd * 60, yF - 10, z_cl + 3), (sd * 100, yF * 0.6, z_cl + 10),
                (sd * (a_b(z_cl) - 25), yF * 0.1, z_cl + 12)]
        sl2, s = cv.tube(pts_, [7.5, 7, 6.5, 7])
        if sl2 is not None:
            ok = body[sl2] & (cv.lab[sl2] != LUNG)
            cv.paint(sl2, (s < 1) & ok, U(700, 1000), BONE)
            cv.paint(sl2, (s < 0.55) & ok, U(200, 400), BONE)

    # ---- spine: canal, discs, vertebral bodies (cortex and cancellous core), posterior elements ----
    zc_all = Z.astype(float)
    ycan = y_canal(zc_all).astype(_F)[:, None, None]
    rcz = rcan_f(zc_all).astype(_F)[:, None, None]
    canal = np.hypot(X3 / (rcz * 1.15), (Y3 - ycan) / rcz) < 1
    cv.hu[canal] = U(5, 25)
    cv.lab[canal] = 0
    v_cort, v_canc, post_hu, disc_hu = U(700, 1000), U(150, 300), U(400, 650), U(70, 110)
    for name, ztop, zbot, rx, ry, rcan, disc in levels:
        b = cv.box((-60, -200, zbot - disc - 45), (60, 200, ztop + 1))
        if b is None:
            continue
        sl2, x, y, z = b
        yv = yvb_z[sl2[0]]
        dy = (y - yv) / _F(ry)
        ev = (x / _F(rx)) ** 2 + np.where(dy > 0, np.abs(dy) ** 3.5, dy ** 2)
        inz = (z <= ztop) & (z >= zbot)
        disc_z = (z < zbot) & (z >= zbot - disc)
        cv.paint(sl2, (ev < 1.05) & disc_z, disc_hu)
        cv.paint(sl2, (ev < 1) & inz, v_cort, BONE)
        core = ev < (1 - 2.0 / rx) ** 2
        plate = (z > ztop - 1.5) | (z < zbot + 1.5)  # thin endplates, half-filled by a 3 mm slice
        canc = v_canc + 25 * rng.standard_normal(core.shape).astype(_F)
        cv.paint(sl2, core & inz, np.where(plate, (v_canc + v_cort) / 2, canc), BONE)
        h = ztop - zbot
        yc = ycan[sl2[0]]
        dd = np.hypot(x, y - yc)
        ta = U(4.5, 6.5)
        arch_z = (z <= ztop - 0.1 * h) & (z >= zbot - 0.3 * h)
        ring = (dd > rcan) & (dd < rcan + ta) & (y > yc - 0.6 * rcan) & arch_z
        lumbar = name.startswith("L")
        L_sp = U(30, 35) if lumbar else U(32, 40)
        slope = 0.15 if lumbar else (0.9 if name[1:] in ("4", "5", "6", "7", "8", "9") else 0.5)
        hs = 16 if lumbar else 8
        y0 = yc + rcan + ta - 1
        zc_sp = ztop - 0.35 * h - slope * (y - y0)
        spin = (np.abs(x) < (4.5 if lumbar else 3.5)) & (y >= y0 - 2) & (y <= yc + rcan + L_sp) \
            & (np.abs(z - zc_sp) < hs / 2)
        tp_len = (U(40, 50) if lumbar else 40 - 1.2 * int(name[1:])) if name != "C7" else 30
        k_tp = 0.0 if lumbar else 0.35
        yt = yc + k_tp * (np.abs(x) - rcan)
        tzc = ztop - 0.2 * h - 5
        tp = (np.abs(x) > rcan) & (np.abs(x) < tp_len) & (np.abs(y - yt) < (3.5 if lumbar else 4.5)) \
            & (np.abs(z - tzc) < 5)
        post = (ring | spin | tp) & (rho[sl2[1:]] < Rf[sl2] - 1)
        cv.paint(sl2, post, post_hu, BONE)

    cv.lab[cv.lab > BONE] = 0
    # ---- texture, partial volume, noise ----
    tex = _smooth_field(rng, cv.hu.shape, (4, 8, 8))
    amp = np.where(cv.lab == LUNG, _F(25), np.where(cv.hu > -300, _F(6), _F(0)))
    cv.hu += tex * amp
    del tex, amp
    sigma = U(5, 30)
    blur = (0.45, 0.6, 0.6)
    probe = np.zeros((9, 9, 9), _F)
    probe[4, 4, 4] = 1
    gain = float(np.sqrt((ndimage.gaussian_filter(probe, blur) ** 2).sum()))
    cv.hu += rng.standard_normal(cv.hu.shape, dtype=_F) * _F(sigma / gain)
    hu_arr = ndimage.gaussian_filter(cv.hu, blur)
    arr = np.clip(np.rint(hu_arr), -1024, 3071).astype(np.int16)

    origin = (float(X[0]), float(Y[0]), float(Z[0]) + U(-600, -100))
    vol = Volume.from_array(
        arr, spacing=(sx, sy, sz), origin=origin, modality="CT", description="CT torso phantom",
        window_presets=[WindowPreset("soft tissue", 40, 400), WindowPreset("lung", -600, 1500),
                        WindowPreset("bone", 400, 1800)],
        metadata={"phantom": {"phase": phase, "noise_hu": round(sigma, 1), "oral_contrast": oral,
                              "width_mm": round(W, 1), "depth_mm": round(D, 1), "fat_mm": round(f0, 1)}})
    return vol, cv.lab


def write_dicom_series(volume: Volume, folder) -> list:
    """The phantom as a classic single-frame CT series (through the app's own writer)."""
    from formats.dicom.write import write_series
    return write_series(volume, folder, series_description="CT torso phantom")
