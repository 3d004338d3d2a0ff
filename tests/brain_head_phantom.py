"""A head around the real MNI152 T1 template's brain, written apart from the training generator
(inference/training/synth_brain.py): no shared code, and drawn differently. At the template's own
1 mm, without any warp; the brain is first closed into a smooth hull (cisterns and the gaps between
the lobes filled with fluid), then shells outside the hull whose thicknesses follow the anatomy
rather than chance: skull thicker at the vertex and thinner over the temples, a temporalis muscle
on the sides, fat thicker at the back, eyes in front below the frontal lobes. T1-like intensities
as fractions of the template's white matter, Rician noise over the whole image (the template's
background is exactly zero)."""
import numpy as np
from scipy import ndimage

from core.volume import Volume

# T1-like, as a fraction of the template's median white matter
FLUID, TABLE, DIPLOE, MUSCLE, FAT, SKIN, EYE = 0.3, 0.05, 0.7, 0.45, 1.05, 0.55, 0.15


def _outside_distance(mask: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt(~mask)


def add_head(t1: Volume, brain: np.ndarray, noise: float = 0.02, seed: int = 0):
    """(the template inside a head, the skull-and-scalp mask: every voxel the head adds apart from
    the fluid around the brain). ``brain``: the template's brain mask on its grid."""
    assert np.allclose(t1.geometry.spacing, 1.0), "drawn in 1 mm voxels"
    img = t1.array.astype(np.float32)
    wm_level = float(np.median(img[brain & (img > np.percentile(img[brain], 70))]))
    # closing by distances (7 mm), on a 2 mm copy for speed: a smooth outline around the brain
    coarse = brain[::2, ::2, ::2]
    closed = ndimage.distance_transform_edt(ndimage.distance_transform_edt(~coarse) <= 3.5) > 3.5
    hull = brain | np.repeat(np.repeat(np.repeat(closed, 2, 0), 2, 1), 2, 2)[:brain.shape[0], :brain.shape[1],
                                                                            :brain.shape[2]]
    d = _outside_distance(hull)
    band = np.nonzero(~hull & (d <= 28))  # every shell lies within 28 mm of the hull
    db = d[band]
    # unit direction from the brain's centre (array axes z: inferior->superior, y: posterior->anterior)
    zc, yc, xc = ndimage.center_of_mass(brain)
    z, y, x = (c.astype(np.float32) - m for c, m in zip(band, (zc, yc, xc)))
    r = np.sqrt(z ** 2 + y ** 2 + x ** 2) + 1e-6
    up, front, side = z / r, y / r, np.abs(x) / r
    fluid = 1.5 + 1.5 * (0.5 + 0.5 * np.sin(5 * up + 3 * front))  # 1.5-3 mm
    table = 1.2
    skull = 5.0 + 2.0 * np.clip(up, 0, 1) - 2.0 * side  # 3-7 mm: thin temporal squama, thick vertex
    temporalis = 7.0 * np.clip(side - 0.55, 0, None) / 0.45 * (np.abs(up - 0.1) < 0.45)
    widths = (fluid, table, skull - 2 * table, table, 0.8 + temporalis, 3.0 + 2.5 * np.clip(-front, 0, 1), 1.8)
    values = (FLUID, TABLE, DIPLOE, TABLE, MUSCLE, FAT, SKIN)
    out = img.copy()
    out[hull & ~brain] = FLUID * wm_level  # filled cisterns and sulci between the lobes
    shell = np.full(db.shape, -1)
    edge = np.zeros_like(db)
    for k, w in enumerate(widths):
        shell[(shell < 0) & (db <= edge + w)] = k
        edge = edge + w
    inside = shell >= 0
    out[tuple(c[inside] for c in band)] = np.asarray(values, np.float32)[shell[inside]] * wm_level
    head = np.zeros(img.shape, bool)
    head[tuple(c[shell > 0] for c in band)] = True
    # eyes: in front of and below the frontal lobes, outside the skull
    front_edge = np.nonzero(brain.any(axis=(0, 2)))[0].max()
    low = np.nonzero(brain.any(axis=(1, 2)))[0]
    ez, ey = low.min() + 0.3 * (low.max() - low.min()), front_edge - 5
    zz, yy, xx = np.ogrid[:img.shape[0], :img.shape[1], :img.shape[2]]
    outer_skull = np.zeros(img.shape, bool)
    outer_skull[tuple(c[shell >= 4] for c in band)] = True
    for ex in (xc - 32, xc + 32):
        eye = ((zz - ez) ** 2 + (yy - ey) ** 2 + (xx - ex) ** 2 < 12 ** 2) & (outer_skull | (d > 28))
        out[eye] = EYE * wm_level
        head |= eye
    rng = np.random.default_rng(seed)
    sigma = noise * wm_level
    out = np.sqrt((out + rng.normal(0, sigma, out.shape)) ** 2 + rng.normal(0, sigma, out.shape) ** 2)
    return Volume(out.astype(np.float32), t1.geometry, modality="MR"), head
