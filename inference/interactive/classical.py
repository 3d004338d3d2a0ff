"""The classical interactive engine: seeded region growing in a region of interest around the
prompts, at the image's own resolution (numpy/scipy only: no torch, no weights). The fallback on
any machine and the benchmark's baseline.

How prompts become an object:
- a positive click or scribble is a seed; the object's intensity range is learnt around it (the
  median of a small ball +- a few times the noise measured in the same ROI, on the image smoothed
  by one voxel); the object is what that range reaches from the seeds, holes filled;
- a box or lasso drawn on one slice: its centre (box) or its inside (lasso) is the seed, the slice
  outside it is background, and the object may not leave the box's in-plane extent (a little
  margin) on other slices, so one box grows into a 3D object through the volume;
- a negative click, scribble or lasso is background; where it lies in the same connected region
  as a seed, the part of that region nearer (mm) the negative prompt than any positive one goes;
- the edge: the range is tight (the object's inside), so the object then grows into a band as
  wide as the smoothing blurs, voxel by voxel nearer the object's local level than the
  background's (the half-way iso-contour, which keeps the thin end slices of anisotropic images).
The ROI grows when the object touches its border.

Refinement: with a ``previous`` mask, only the parts where the new answer differs from it and
that touch the newest prompt change (a positive click adds the missed region it lies in, a
negative click removes the false region it lies in); everything else stays as it was.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from core.geometry import Geometry
from core.progress import check
from core.volume import Volume
from inference.interactive.engine import EngineInfo, register
from inference.interactive.prompts import Box, Lasso, Point, Prompts, Scribble, rasterise

MARGIN_MM = 20.0        # ROI margin around the prompts for the first try
MIN_MARGIN_VOX = 6
MAX_ROI_VOX = 256       # per axis: beyond it the object is cut at the ROI border
ENLARGE = 3             # times the ROI may double when the object touches its border
SEED_RADIUS_MM = 2.0    # intensity statistics of a click come from a ball this size
NOISE_K = 3.0           # object range: median +- this many noise standard deviations
BOX_CENTRE = 1 / 3      # a box's central third: its seed when the Otsu split finds none
EDGE_BAND_MM = 3.0      # x the finest spacing: where the edge may lie beyond the object's range
NEG_REACH_MM = 15.0     # a negative prompt's say over the edge band reaches this far
BOX_SLACK = 0.15        # the object may leave a box's in-plane extent by this fraction


class ClassicalEngine:
    name = "classical"

    def __init__(self, device=None) -> None:
        self.device = "cpu"  # numpy/scipy only

    def open(self, volume: Volume) -> "ClassicalState":
        return ClassicalState(volume)


class ClassicalState:
    def __init__(self, volume: Volume) -> None:
        a = volume.array
        if a.ndim == 4:  # colour (ultrasound screenshots, photos): luminance
            a = a[..., :3].astype(np.float32).mean(axis=-1)
        self.image = np.asarray(a, dtype=np.float32)
        self.geometry = volume.geometry
        self.spacing_zyx = np.asarray(volume.geometry.spacing, dtype=np.float64)[::-1]
        self.shape = self.image.shape
        self._cache = None  # (lo, hi, smoothed): one tuple, swapped whole (predict may run in two workers)

    # -- the answer -------------------------------------------------------------------------------
    def predict(self, prompts: Prompts, previous: Optional[np.ndarray] = None, cancel=None) -> np.ndarray:
        geo = self.geometry
        every = rasterise(prompts, geo)  # raises PromptError naming a bad prompt
        out = np.zeros(self.shape, bool)
        if every.box is None:
            return out if previous is None else np.asarray(previous, bool).copy()
        prev = None if previous is None else np.asarray(previous, bool)
        lo, hi = self._roi(every, prev)
        # a corrective click changes the object only near itself (see _refine), and the ROI already
        # holds the object and a margin: growing it would only chase a leak the click cannot keep
        tries = 0 if prev is not None and isinstance(prompts.items[-1], (Point, Scribble)) else ENLARGE
        for attempt in range(tries + 1):
            check(cancel)
            sl = tuple(slice(a, b) for a, b in zip(lo, hi))
            obj = self._segment(prompts, every, prev, sl, cancel)
            grow = self._touching(obj, lo, hi)
            if not grow.any() or attempt == tries:
                break
            lo, hi = self._enlarge(lo, hi, grow)
        out[sl] = obj
        if prev is None:
            return out
        return _refine(prev, out, sl, rasterise(Prompts(prompts.items[-1:]), geo), prompts.items[-1],
                       self.spacing_zyx)

    def _smoothed(self, sl) -> np.ndarray:
        """The image smoothed by one (finest) voxel over ``sl``, computed on a padded box so it is
        the same whichever ROI asks; the last box is kept (prompts on one object reuse it)."""
        from scipy import ndimage as ndi

        sigma = [0.0 if n < 2 else float(self.spacing_zyx.min() / self.spacing_zyx[a])
                 for a, n in enumerate(self.shape)]
        pad = [int(np.ceil(4 * s)) + 1 for s in sigma]
        want_lo = np.array([s.start for s in sl])
        want_hi = np.array([s.stop for s in sl])
        cache = self._cache
        if cache is not None:
            lo, hi, arr = cache
            ok_lo = np.where(lo == 0, 0, lo + pad)  # inside the part computed with its full padding
            ok_hi = np.where(hi == np.asarray(self.shape), hi, hi - pad)
            if np.all(want_lo >= ok_lo) and np.all(want_hi <= ok_hi):
                return arr[tuple(slice(a - b, c - b) for a, b, c in zip(want_lo, lo, want_hi))]
        lo = np.maximum(want_lo - pad, 0)
        hi = np.minimum(want_hi + pad, self.shape)
        arr = ndi.gaussian_filter(self.image[tuple(slice(a, b) for a, b in zip(lo, hi))], sigma, mode="nearest")
        self._cache = (lo, hi, arr)
        return arr[tuple(slice(a - b, c - b) for a, b, c in zip(want_lo, lo, want_hi))]

    # -- the region of interest -------------------------------------------------------------------
    def _roi(self, every, prev) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([s.start for s in every.box])
        hi = np.array([s.stop for s in every.box])
        if prev is not None and prev.any():
            # the previous object near the prompts takes part (so a click can cut or extend it)
            near = _bbox(prev)
            if near is not None and np.all(np.minimum(near[1], hi) - np.maximum(near[0], lo) > -8):
                lo, hi = np.minimum(lo, near[0]), np.maximum(hi, near[1])
        extent_mm = (hi - lo) * self.spacing_zyx
        margin_mm = max(MARGIN_MM, 0.5 * float(extent_mm.max()))
        margin = np.maximum(np.ceil(margin_mm / self.spacing_zyx), MIN_MARGIN_VOX).astype(int)
        lo, hi = np.maximum(lo - margin, 0), np.minimum(hi + margin, self.shape)
        over = (hi - lo) - MAX_ROI_VOX
        for a in np.flatnonzero(over > 0):  # too big: keep the part around the prompts' centre
            c = (every.box[a].start + every.box[a].stop) // 2
            lo[a] = int(np.clip(c - MAX_ROI_VOX // 2, 0, self.shape[a] - MAX_ROI_VOX))
            hi[a] = lo[a] + MAX_ROI_VOX
        return lo, hi

    def _touching(self, obj: np.ndarray, lo, hi) -> np.ndarray:
        """(axis, side) faces of the ROI the object touches and that could still grow."""
        grow = np.zeros((3, 2), bool)
        for a in range(3):
            if obj.shape[a] < 2:
                continue
            first = np.take(obj, 0, axis=a).any()
            last = np.take(obj, obj.shape[a] - 1, axis=a).any()
            room = (hi[a] - lo[a]) < MAX_ROI_VOX
            grow[a, 0] = first and lo[a] > 0 and room
            grow[a, 1] = last and hi[a] < self.shape[a] and room
        return grow

    def _enlarge(self, lo, hi, grow) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = lo.copy(), hi.copy()
        for a in range(3):
            step = max(int(hi[a] - lo[a]) // 2, MIN_MARGIN_VOX)
            if grow[a, 0]:
                lo[a] = max(0, lo[a] - step)
            if grow[a, 1]:
                hi[a] = min(self.shape[a], hi[a] + step)
            if hi[a] - lo[a] > MAX_ROI_VOX:
                if grow[a, 0] and not grow[a, 1]:
                    lo[a] = hi[a] - MAX_ROI_VOX
                else:
                    hi[a] = lo[a] + MAX_ROI_VOX
        return lo, hi

    # -- the segmentation inside the ROI ----------------------------------------------------------
    def _segment(self, prompts: Prompts, every, prev, sl, cancel) -> np.ndarray:
        from scipy import ndimage as ndi

        img = self.image[sl]
        # the ROI as a grid of its own: each prompt is rasterised on it, not on the whole image
        start = [sl[2].start, sl[1].start, sl[0].start]
        roi = Geometry((img.shape[2], img.shape[1], img.shape[0]), self.geometry.spacing,
                       self.geometry.index_to_world(start), self.geometry.direction)
        axes = [a for a in range(3) if img.shape[a] > 1]
        smooth = self._smoothed(sl)
        noise = _noise(smooth, axes)
        check(cancel)

        pos = np.zeros(img.shape, bool)
        neg = every.negative[sl].copy()
        allowed = np.ones(img.shape, bool)
        ranges: list[tuple[float, float]] = []
        radius = np.maximum(np.rint(SEED_RADIUS_MM / self.spacing_zyx), 1).astype(int)
        for p in prompts.items:
            if isinstance(p, (Point, Scribble)) and p.positive:
                seed = rasterise(Prompts((p,)), roi).positive
                pos |= seed
                stats = ndi.binary_dilation(seed, _ellipsoid(radius, img.shape)) if seed.any() else seed
                ranges.append(_range(smooth[stats], noise))
            elif isinstance(p, (Box, Lasso)) and (isinstance(p, Box) or p.positive):
                drawn = rasterise(Prompts((p,)), roi).box_mask
                inner, prism = self._region(drawn, isinstance(p, Box), smooth)
                pos |= inner
                allowed &= prism
                # on the slice it was drawn on, the object lies inside the box/lasso
                flat = _flat(drawn)
                if flat is not None:
                    a, s = flat
                    plane = [slice(None)] * 3
                    plane[a] = slice(s, s + 1)
                    neg[tuple(plane)] |= ~drawn[tuple(plane)]
                if inner.any():
                    ranges.append(_range(smooth[inner], noise))
        check(cancel)
        if not pos.any():
            if prev is None or not prev[sl].any():
                return np.zeros(img.shape, bool)
            # only negative prompts: the previous object (away from them) is what stays
            keep = prev[sl]
            pos = ndi.binary_erosion(keep) & ~ndi.binary_dilation(neg, iterations=3)
            candidate = keep.copy()
        else:
            candidate = np.zeros(img.shape, bool)
            for low, high in ranges:
                candidate |= (smooth >= low) & (smooth <= high)
        candidate &= allowed
        neg &= ~pos
        comps, n = ndi.label(candidate | pos | neg)
        with_pos = np.zeros(n + 1, bool)
        with_pos[np.unique(comps[pos])] = True
        with_neg = np.zeros(n + 1, bool)
        with_neg[np.unique(comps[neg])] = True
        with_pos[0] = with_neg[0] = False
        obj = with_pos[comps]
        both = with_pos & with_neg
        claimed = np.zeros(img.shape, bool)
        if both.any():
            # object and background markers in one connected region (the same intensities): the
            # part nearer (mm) a negative prompt than any positive one goes; what is left of the
            # object must still reach a positive prompt
            shared = both[comps]
            box = tuple(slice(a, b) for a, b in zip(*_bbox(shared)))
            sampling = [float(self.spacing_zyx[a]) for a in range(3)]
            seeds = (pos | neg)[box]
            nearest = ndi.distance_transform_edt(~seeds, sampling=sampling, return_distances=False,
                                                 return_indices=True)
            claimed[box] = shared[box] & neg[box][tuple(nearest)] & ~pos[box][tuple(nearest)]
            obj &= ~claimed
            parts, _k = ndi.label(obj)
            obj = np.isin(parts, np.unique(parts[pos & obj]))
            obj &= parts > 0
        if not obj.any():
            return obj
        # holes the intensity range left inside the object (not the parts negatives claimed)
        obj = (_fill_holes(obj, axes, neg) & ~claimed & allowed) | obj
        # the range is tight (the object's inside); its edge is where the image is half-way between
        # the object's level and the background's around it (both measured locally), in a band as
        # wide as the smoothing blurs
        ring = np.maximum(np.ceil(EDGE_BAND_MM * self.spacing_zyx.min() / self.spacing_zyx), 1).astype(int)
        ring = np.where(np.asarray(img.shape) > 1, ring, 0)
        grown = ndi.maximum_filter(obj.view(np.uint8), size=tuple(2 * ring + 1)).view(bool)  # separable: fast
        lo, hi = _bbox(grown)
        lo, hi = np.maximum(lo - ring - 1, 0), np.minimum(hi + ring + 1, img.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        inside, band, s = obj[box], grown[box], smooth[box]
        outer = ndi.maximum_filter(band.view(np.uint8), size=tuple(2 * ring + 1)).view(bool) & ~band
        check(cancel)
        level_in, level_out = _local_mean(s, inside, ring), _local_mean(s, outer, ring)
        # partial volume lies between the two levels: nearer the object's, and not beyond it by
        # more than the object's own spread (a rib brighter than both is not the liver's edge)
        spread = NOISE_K * noise
        toward = (s - level_in) * np.sign(level_out - level_in)
        edge = band & ~inside & (np.abs(s - level_in) < np.abs(s - level_out)) & (toward > -spread)
        edge &= ~(claimed[box] | neg[box]) & allowed[box]
        if neg[box].any():
            # a negative prompt in the band says the edge is too far out there: near it, voxels
            # nearer its intensity than the object's are not the object
            values = s[neg[box]]
            v_neg = float(np.median(values))
            reach = np.where(np.asarray(s.shape) > 1, np.ceil(NEG_REACH_MM / self.spacing_zyx), 0).astype(int)
            near = ndi.maximum_filter(neg[box].view(np.uint8), size=tuple(2 * reach + 1)).view(bool)  # a box: fast
            edge &= ~(near & (np.abs(s - v_neg) < np.abs(s - level_in)))
        comps, _n = ndi.label(edge | inside)
        keep = np.unique(comps[inside])
        out = np.zeros(img.shape, bool)
        out[box] = np.isin(comps, keep[keep > 0])
        return _fill_holes(out, axes, neg) & ~claimed & allowed | out

    def _region(self, drawn: np.ndarray, is_box: bool, smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(object marker, where the object may be) for a box or lasso drawn on one slice."""
        from scipy import ndimage as ndi

        flat = _flat(drawn)
        prism = np.ones(drawn.shape, bool)
        if flat is None:  # drawn through the whole volume: no slice to grow from
            return drawn.copy(), drawn.copy()
        a, _s = flat
        rest = [b for b in range(3) if b != a]
        box = _bbox(drawn)
        inner = np.zeros(drawn.shape, bool)
        lim = [slice(None)] * 3
        for b in rest:
            n = box[1][b] - box[0][b]
            slack = int(np.ceil(BOX_SLACK * n)) + 1
            lim[b] = slice(max(0, box[0][b] - slack), box[1][b] + slack)
        prism[:] = False
        prism[tuple(lim)] = True
        if is_box:
            centre = [slice(None)] * 3
            centre[a] = slice(box[0][a], box[1][a])
            for b in rest:
                n = box[1][b] - box[0][b]
                cut = int(np.floor(n * (1 - BOX_CENTRE) / 2))
                centre[b] = slice(box[0][b] + cut, box[1][b] - cut)
            inner[tuple(centre)] = True
            # the object is the class (two-class Otsu split of the box) that fills the box's middle
            # more than its rim; its largest piece there is the seed (the centre alone is wrong
            # for C-shaped objects such as a lateral ventricle)
            rim = drawn & ~ndi.binary_erosion(drawn, _plane_footprint(a))
            middle = drawn & ~rim
            for b in rest:
                n = box[1][b] - box[0][b]
                cut = int(np.floor(n * 0.15))
                lim2 = [slice(None)] * 3
                lim2[b] = slice(box[0][b] + cut, box[1][b] - cut)
                keep = np.zeros(drawn.shape, bool)
                keep[tuple(lim2)] = True
                middle &= keep
            if middle.any() and rim.any():
                bright = smooth > _otsu(smooth[drawn])
                cls = bright if bright[middle].mean() - bright[rim].mean() >= 0 else ~bright
                seeds, n = ndi.label(cls & middle)
                if n:
                    sizes = np.bincount(seeds.ravel())
                    sizes[0] = 0
                    inner = seeds == int(np.argmax(sizes))
        else:
            inner = ndi.binary_erosion(drawn, _plane_footprint(a))
            if not inner.any():
                inner = drawn.copy()
        return inner, prism


def _refine(prev, new, sl, last, prompt, spacing_zyx) -> np.ndarray:
    """``prev`` changed only where ``new`` differs from it in parts touching the newest prompt; a
    positive click or scribble adds only near itself (within 3x its distance from the object, at
    least a quarter of the object's radius), so a click on a missed rim does not flood the
    tissue beside it."""
    from scipy import ndimage as ndi

    out = prev.copy()
    region = (last.positive | last.negative)[sl]
    touch = ndi.binary_dilation(region, iterations=1) if region.any() else region
    for diff, value in ((new[sl] & ~prev[sl], True), (prev[sl] & ~new[sl], False)):
        if isinstance(prompt, (Point, Scribble)) and prompt.positive is not value:
            continue  # a positive click only adds, a negative one only removes
        lab, n = ndi.label(diff)
        if n == 0:
            continue
        hit = np.unique(lab[touch & diff])
        hit = hit[hit > 0]
        if hit.size:
            change = np.isin(lab, hit)
            if value and isinstance(prompt, (Point, Scribble)):
                change &= _near(region, prev[sl], prev, spacing_zyx)
            roi = out[sl]
            roi[change] = value
    return out


def _near(prompt: np.ndarray, before: np.ndarray, whole_before: np.ndarray, spacing_zyx) -> np.ndarray:
    """Voxels of the ROI within reach of a corrective positive prompt (see _refine)."""
    pts = np.argwhere(prompt) * spacing_zyx
    obj = np.argwhere(before)
    if len(pts) == 0 or len(obj) == 0:
        return np.ones(prompt.shape, bool)
    if len(obj) > 20000:  # the distance to the object needs only a sample of it
        obj = obj[:: len(obj) // 20000]
    centre = pts.mean(axis=0)
    d = float(np.sqrt(((obj * spacing_zyx - centre) ** 2).sum(axis=1)).min())
    dims = int(np.sum(np.asarray(whole_before.shape) > 1))
    size = float(whole_before.sum() * np.prod(spacing_zyx[np.asarray(whole_before.shape) > 1]))
    r_obj = (size * 3 / (4 * np.pi)) ** (1 / 3) if dims == 3 else np.sqrt(size / np.pi)
    reach = max(3.0 * d, 0.25 * r_obj, 2.0 * float(spacing_zyx.max() if dims == 3 else spacing_zyx[1:].max()))
    grids = np.ogrid[tuple(slice(0, n) for n in prompt.shape)]
    dist2 = sum(((g * s) - c) ** 2 for g, s, c in zip(grids, spacing_zyx, centre))
    return dist2 <= reach * reach


def _flat(drawn: np.ndarray) -> Optional[tuple[int, int]]:
    """(axis, index) of the one slice a drawn region lies on; the thinnest axis for 2D images."""
    box = _bbox(drawn)
    if box is None:
        return None
    thick = box[1] - box[0]
    cands = [a for a in range(3) if thick[a] == 1 and drawn.shape[a] > 1] or \
        [a for a in range(3) if thick[a] == 1]  # a 2D image: its one slice
    if not cands:
        return None
    a = min(cands, key=lambda b: -drawn.shape[b])
    return a, int(box[0][a])


def _otsu(values: np.ndarray) -> float:
    """The threshold that best splits ``values`` in two classes (Otsu)."""
    hist, edges = np.histogram(values, bins=128)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    return float(centres[int(np.argmax(w0 * w1 * (m0 - m1) ** 2))])


def _plane_footprint(axis: int) -> np.ndarray:
    f = np.zeros((3, 3, 3), bool)
    idx: list = [slice(None)] * 3
    idx[axis] = 1
    f[tuple(idx)] = True
    return f


def _bbox(mask: np.ndarray):
    if not mask.any():
        return None
    idx = [np.flatnonzero(mask.any(axis=tuple(b for b in range(3) if b != a))) for a in range(3)]
    return np.array([i[0] for i in idx]), np.array([i[-1] + 1 for i in idx])


def _ellipsoid(radius, shape) -> np.ndarray:
    r = [int(v) if shape[a] > 1 else 0 for a, v in enumerate(radius)]
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    return sum((g / max(v, 1)) ** 2 for g, v in zip((zz, yy, xx), r)) <= 1.0


def _noise(smooth: np.ndarray, axes) -> float:
    """Noise standard deviation of the smoothed image: MAD of neighbour differences (edges are
    few, so the median ignores them)."""
    diffs = [np.diff(smooth, axis=a).ravel() for a in axes] or [np.zeros(1, np.float32)]
    d = np.concatenate(diffs)
    if d.size > 200_000:  # a sample is plenty for a median
        d = d[:: d.size // 200_000]
    sigma = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    scale = float(np.ptp(smooth)) if smooth.size else 0.0
    return max(sigma, 1e-3 * scale, 1e-6)


def _range(values: np.ndarray, noise: float) -> tuple[float, float]:
    if values.size == 0:
        return (np.inf, -np.inf)
    med = float(np.median(values))
    spread = max(noise, 1.4826 * float(np.median(np.abs(values - med))))
    return med - NOISE_K * spread, med + NOISE_K * spread


def _local_mean(values: np.ndarray, where: np.ndarray, ring) -> np.ndarray:
    """Mean of ``values`` over ``where`` near each voxel (normalised convolution); where none is
    near, the mean over all of ``where``."""
    from scipy import ndimage as ndi

    if not where.any():
        return np.full(values.shape, np.inf, np.float32)
    sigma = [float(r) for r in ring]
    w = ndi.gaussian_filter(where.astype(np.float32), sigma, mode="nearest")
    v = ndi.gaussian_filter(np.where(where, values, 0).astype(np.float32), sigma, mode="nearest")
    fallback = float(values[where].mean())
    return np.where(w > 1e-3, v / np.maximum(w, 1e-6), fallback)


def _fill_holes(obj: np.ndarray, axes, negative: np.ndarray) -> np.ndarray:
    """Background components that do not reach the array's border (in 2D, the plane's border),
    except those a negative prompt is in (a rib against the liver is a hole the user said is not
    the object)."""
    from scipy import ndimage as ndi

    lab, n = ndi.label(~obj)
    if n == 0:
        return obj
    edge = np.zeros(n + 1, bool)
    edge[np.unique(lab[negative])] = True
    for a in axes:
        edge[np.unique(np.take(lab, 0, axis=a))] = True
        edge[np.unique(np.take(lab, lab.shape[a] - 1, axis=a))] = True
    edge[0] = True
    return obj | ~edge[lab]


register(EngineInfo("classical", "Classical (region growing from the prompts)", lambda: None,
                    lambda device=None: ClassicalEngine(device)))
