"""Segment editor effects after 3D Slicer's Segment Editor and ITK-SNAP: hole filling on one slice,
level tracing, scissors, grow from seeds, logical operations between segments, margin and hollow.

Like core.editing, each effect returns one Edit (or None when nothing changed), never writes into
locked segments, and measures sizes in millimetres through the label map's spacing. Shapes drawn on
a view (scissors) come as LPS points with the view's normal, so they cut the same voxels on
anisotropic and oblique grids. Plane axes are index axes (0 = x, 1 = y, 2 = z) as in core.editing.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from core.editing import Edit, apply, bounding_box, merge
from core.errors import DelineateError
from core.labels import LabelMap

LOGICAL = ("union", "intersect", "subtract", "copy", "clear")
SCISSORS = ("erase inside", "erase outside", "fill inside", "fill outside")
HOLLOW = ("inside", "medial", "outside")


def changed_counts(edit: Optional[Edit], axis: int = 0) -> tuple[int, int]:
    """Voxels an edit changed and on how many slices along array ``axis`` (0 = k: axial slices)."""
    if edit is None:
        return 0, 0
    changed = edit.before != edit.after
    per_slice = changed.any(axis=tuple(a for a in range(3) if a != axis))
    return int(changed.sum()), int(per_slice.sum())


def _sampling(lm: LabelMap) -> np.ndarray:
    return np.asarray(lm.geometry.spacing, dtype=np.float64)[::-1]  # (z, y, x) mm


def _slice(plane_axis: int, index: int) -> tuple:
    sl = [slice(None)] * 3
    sl[2 - plane_axis] = int(index)
    return tuple(sl)


# -- hole filling on slices ------------------------------------------------------------------------
def fill_holes_2d(lm: LabelMap, value: int, plane_axis: int, index: Optional[int] = None,
                  locked: set[int] = frozenset()) -> Optional[Edit]:
    """Fill the holes of ``value`` slice by slice in the plane normal to ``plane_axis``: on slice
    ``index`` only, or on every slice (None). A contour drawn on one slice encloses nothing in 3D,
    so the 3D fill leaves it open; here it closes. Only background is filled: another segment
    lying in the hole stays."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    mask = lm.array == value
    a = 2 - plane_axis
    if index is not None and not 0 <= int(index) < mask.shape[a]:
        return None
    slices = [int(index)] if index is not None else np.flatnonzero(mask.any(axis=tuple(x for x in range(3) if x != a)))
    fill = np.zeros_like(mask)
    for k in slices:
        sl = _slice(plane_axis, k)
        m = mask[sl]
        if m.any():
            fill[sl] = ndimage.binary_fill_holes(m) & ~m
    return apply(lm, "fill holes 2D", value, fill & (lm.array == 0), locked)


# -- level tracing -----------------------------------------------------------------------------------
def level_trace_region(image: np.ndarray, seed_ijk, plane_axis: int) -> tuple[tuple, np.ndarray]:
    """The region inside the iso-intensity outline through the seed, on the seed's slice: the
    4-connected pixels at or above the seed's intensity (at or below it when the seed is darker than
    the slice's median: a dark object on a brighter background), holes filled. Returns the slice
    index tuple and the 2D mask."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    ijk = np.rint(np.asarray(seed_ijk, dtype=np.float64)).astype(int)
    sl = _slice(plane_axis, ijk[plane_axis])
    plane = np.asarray(image[sl], dtype=np.float32)
    seed2 = tuple(int(ijk[2 - a]) for a in range(3) if a != 2 - plane_axis)  # (row, col) in the plane
    level = plane[seed2]
    side = plane >= level if level >= np.median(plane) else plane <= level
    comp, _n = ndimage.label(side)
    return sl, ndimage.binary_fill_holes(comp == comp[seed2])


def level_trace(lm: LabelMap, image: np.ndarray, seed_ijk, value: int, plane_axis: int,
                locked: set[int] = frozenset()) -> Optional[Edit]:
    """Paint ``value`` into the level-traced region through a click (see level_trace_region)."""
    size = np.asarray(lm.geometry.size)
    ijk = np.rint(np.asarray(seed_ijk, dtype=np.float64))
    if np.any(ijk < 0) or np.any(ijk >= size):
        return None
    sl, region = level_trace_region(image, ijk, plane_axis)
    where = np.zeros(lm.array.shape, bool)
    where[sl] = region
    return apply(lm, "level trace", value, where, locked)


# -- scissors ----------------------------------------------------------------------------------------
def _frame(normal) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    e = np.eye(3)[int(np.argmin(np.abs(n)))]
    u = np.cross(n, e)
    u /= np.linalg.norm(u)
    return u, np.cross(n, u), n


def shape_mask(geometry, polygon_lps, normal, thickness_mm: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """Which voxels of ``geometry`` project inside a polygon drawn on a plane (LPS vertices, the
    plane's ``normal``): their centres' projection along the normal falls inside it. Returns
    (inside, considered): ``considered`` is every voxel through the volume (``thickness_mm`` None),
    else those whose centre lies within half the thickness of the polygon's plane (one slice)."""
    from skimage.measure import points_in_poly  # imported here: the window should not wait for it

    poly = np.asarray(polygon_lps, dtype=np.float64).reshape(-1, 3)
    u, v, n = _frame(normal)
    p0 = poly[0]
    poly2 = np.c_[(poly - p0) @ u, (poly - p0) @ v]
    lo2, hi2 = poly2.min(axis=0), poly2.max(axis=0)
    m = geometry.direction * geometry.spacing  # world = origin + m @ ijk
    coef = {name: (float((geometry.origin - p0) @ w), m.T @ w) for name, w in (("a", u), ("b", v), ("s", n))}
    shape = geometry.shape_zyx
    ax = int(np.argmax(np.abs(geometry.direction.T @ n)))  # index axis closest to the normal: slabs along it
    arr_ax = 2 - ax
    r1, r2 = [a for a in range(3) if a != arr_ax]  # the slab's array axes
    g1 = np.arange(shape[r1], dtype=np.float64)[:, None]
    g2 = np.arange(shape[r2], dtype=np.float64)[None, :]
    i1, i2 = 2 - r1, 2 - r2  # their index axes

    def coord(name: str, t: int) -> np.ndarray:
        off, c = coef[name]
        return off + c[ax] * t + c[i1] * g1 + c[i2] * g2

    inside = np.zeros(shape, bool)
    considered = np.ones(shape, bool) if thickness_mm is None else np.zeros(shape, bool)
    reuse = abs(coef["a"][1][ax]) < 1e-9 and abs(coef["b"][1][ax]) < 1e-9  # slabs project alike
    cached = None
    for t in range(shape[arr_ax]):
        sl = [slice(None)] * 3
        sl[arr_ax] = t
        sl = tuple(sl)
        if thickness_mm is not None:
            near = np.abs(coord("s", t)) <= thickness_mm / 2 + 1e-6
            if not near.any():
                continue
            considered[sl] = near
        if cached is None or not reuse:
            a, b = np.broadcast_arrays(coord("a", t), coord("b", t))
            inside2 = np.zeros(a.shape, bool)
            box = (a >= lo2[0]) & (a <= hi2[0]) & (b >= lo2[1]) & (b <= hi2[1])
            if box.any():
                inside2[box] = points_in_poly(np.c_[a[box], b[box]], poly2)
            cached = inside2
        inside[sl] = cached
    return inside & considered, considered


def scissors(lm: LabelMap, polygon_lps, normal, mode: str, value: int, thickness_mm: Optional[float] = None,
             locked: set[int] = frozenset()) -> Optional[Edit]:
    """Cut with a shape drawn on a view: ``mode`` one of SCISSORS. Erasing removes ``value`` only;
    filling paints ``value``. Through the volume (``thickness_mm`` None) or on the slice only."""
    if mode not in SCISSORS:
        raise ValueError(f"unknown scissors mode {mode!r}; one of {SCISSORS}")
    if len(np.asarray(polygon_lps).reshape(-1, 3)) < 3:
        return None
    inside, considered = shape_mask(lm.geometry, polygon_lps, normal, thickness_mm)
    region = inside if mode.endswith("inside") else considered & ~inside
    if mode.startswith("erase"):
        return apply(lm, "scissors", 0, region & (lm.array == value), locked)
    return apply(lm, "scissors", value, region, locked)


# -- grow from seeds ---------------------------------------------------------------------------------
GROW_PAD_MM = 10.0  # how far past the strokes' bounding box it reaches: the window says so (gui.edit_panel)


def _geodesic(img: np.ndarray, markers: np.ndarray, walls: np.ndarray, sampling: np.ndarray) -> np.ndarray:
    """Each voxel's nearest seed along paths whose cost is the intensity change crossed (plus a
    little of the length in mm, so a flat region goes to its nearest seed): a shortest-path
    competition, as Slicer's FastGrowCut (Zhu et al. 2014). Dijkstra from all seeds at once (scipy)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    idx = np.arange(img.size).reshape(img.shape)
    rows, cols, weights = [], [], []
    for ax in range(3):
        a, b = [slice(None)] * 3, [slice(None)] * 3
        a[ax], b[ax] = slice(0, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        ok = ~(walls[a] | walls[b])
        rows.append(idx[a][ok])
        cols.append(idx[b][ok])
        weights.append(np.abs(img[a] - img[b])[ok] + 1e-4 * sampling[ax])
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(img.size, img.size)).tocsr()
    seeds = np.flatnonzero(markers.ravel() > 0)
    dist, _pred, source = dijkstra(graph, directed=False, indices=seeds, min_only=True, return_predecessors=True)
    out = np.zeros(img.size, np.int32)
    reached = np.isfinite(dist) & (source >= 0)
    out[reached] = markers.ravel()[source[reached]]
    return out.reshape(img.shape)


def grow_from_seeds(lm: LabelMap, image: np.ndarray, values=None, locked: set[int] = frozenset(),
                    pad_mm: float = GROW_PAD_MM, method: str = "geodesic") -> Optional[Edit]:
    """Split the background around two or more segments' voxels (the seeds) among them, as Slicer's
    Grow from seeds: within the seeds' bounding box padded by ``pad_mm``, every background voxel goes
    to one seed segment. ``geodesic``: the seed reached by the path crossing the least intensity
    change (fast: a 1M-voxel box in a few seconds); ``random walker`` (Grady 2006, scikit-image;
    spacing-aware, steadier in noise but slow: 24 s for a 64³ box on two shared cores). Other
    segments and locked ones are walls; only background voxels change."""
    present = set(int(v) for v in np.unique(lm.array)) - {0}
    seeds = sorted(present - set(locked)) if values is None else [int(v) for v in values if int(v) in present]
    if len(seeds) < 2:
        raise DelineateError("grow from seeds needs seeds of at least two segments: paint a few strokes in each "
                             "(one can be a 'background' segment around the object)")
    box = bounding_box(np.isin(lm.array, seeds))
    pad = np.ceil(pad_mm / _sampling(lm)).astype(int)
    box = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, lm.array.shape))
    sub = lm.array[box]
    markers = np.zeros(sub.shape, np.int32)
    for n, v in enumerate(seeds, start=1):
        markers[sub == v] = n
    walls = (sub != 0) & (markers == 0)
    img = np.asarray(image[box], dtype=np.float64)
    lo, hi = np.percentile(img, (0.5, 99.5))
    img = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    if method == "random walker":
        from skimage.segmentation import random_walker

        markers[walls] = -1  # removed from the graph
        mode = "bf" if sub.size <= 30_000 else "cg_j"  # a direct solve while it is small enough
        out = random_walker(img, markers, beta=130, mode=mode, tol=1e-4, spacing=_sampling(lm))
    elif method == "geodesic":
        from scipy import ndimage  # imported here: the window should not wait for scipy

        # a light blur (0.7 of the finest voxel) keeps noise from adding up along long paths: Dice
        # 0.985 -> 0.999 on a noisy 100³ ball; the noise-free phantoms stay exact
        sampling = _sampling(lm)
        out = _geodesic(ndimage.gaussian_filter(img, 0.7 * sampling.min() / sampling), markers, walls, sampling)
    else:
        raise ValueError(f"unknown method {method!r}")
    table = np.array([0] + seeds, dtype=lm.array.dtype)
    out = np.clip(out, 0, len(seeds))
    return apply(lm, f"grow from seeds ({method})", table[out], (sub == 0) & (out > 0), locked, box)


# -- logical operations --------------------------------------------------------------------------------
def logical(lm: LabelMap, op: str, target: int, other: Optional[int] = None,
            locked: set[int] = frozenset()) -> Optional[Edit]:
    """Logical operations on ``target`` with ``other``, one undo step. A voxel holds one segment, so a
    segment drawn around another has holes where the other lies: ``other``'s region is its voxels
    with their 3D holes filled.
    union: other's voxels join target; intersect: target keeps only its voxels inside other's region;
    subtract: target loses its voxels inside other's region; copy: target becomes other's shape (its own
    voxels cleared, other's voxels taken; other is left empty); clear: target's voxels become background."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    if op not in LOGICAL:
        raise ValueError(f"unknown operation {op!r}; one of {LOGICAL}")
    mine = lm.array == target
    if op == "clear":
        return apply(lm, "clear", 0, mine, locked)
    if other is None or int(other) == int(target):
        raise DelineateError(f"{op} needs a second segment, other than the one being edited")
    theirs = lm.array == other
    if op == "union":
        return apply(lm, "union", target, theirs, locked)
    if op == "copy":
        cleared = apply(lm, "copy", 0, mine, locked)
        return merge(lm, "copy", [cleared, apply(lm, "copy", target, theirs, locked)])
    region = np.zeros_like(theirs)
    box = bounding_box(theirs)
    if box is not None:
        region[box] = ndimage.binary_fill_holes(theirs[box])
    return apply(lm, op, 0, mine & (~region if op == "intersect" else region), locked)


# -- margin and hollow ---------------------------------------------------------------------------------
def _distances(lm: LabelMap, mask: np.ndarray, mm: float,
               sides=("inside", "outside")) -> tuple[tuple, np.ndarray, np.ndarray]:
    """Box around ``mask`` padded by ``mm`` (and one voxel), the mask in it, and the exact Euclidean
    distance in mm from each voxel centre to the nearest voxel centre on the other side of the
    mask's boundary (inside: to the nearest outside voxel, beyond the image counting as outside;
    outside: to the nearest mask voxel). Only the ``sides`` asked for are computed (inf elsewhere):
    each is a distance transform of the whole box."""
    from scipy import ndimage  # imported here: the window should not wait for scipy

    sampling = _sampling(lm)
    box = bounding_box(mask)
    pad = np.ceil(abs(mm) / sampling).astype(int) + 1
    box = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, mask.shape))
    m = np.pad(mask[box], 1)  # a frame of background: voxels past the image's edge are outside
    inner = (slice(1, -1),) * 3
    d = np.full(m.shape, np.inf)
    if "inside" in sides:
        d[m] = ndimage.distance_transform_edt(m, sampling=sampling)[m]
    if "outside" in sides:
        d[~m] = ndimage.distance_transform_edt(~m, sampling=sampling)[~m]
    return box, m[inner], d[inner]


def margin(lm: LabelMap, value: int, mm: float, locked: set[int] = frozenset()) -> Optional[Edit]:
    """Grow (``mm`` > 0, into background only) or shrink (``mm`` < 0) a segment by a margin in mm:
    a voxel joins when its centre is within ``mm`` of a segment voxel's, and leaves when an outside
    voxel's centre is within ``-mm`` of it (exact distances on anisotropic grids)."""
    mask = lm.array == value
    if not mask.any() or mm == 0:
        return None
    box, m, d = _distances(lm, mask, mm, ("outside",) if mm > 0 else ("inside",))
    if mm > 0:
        return apply(lm, "margin", value, ~m & (d <= mm + 1e-9) & (lm.array[box] == 0), locked, box)
    return apply(lm, "margin", 0, m & (d <= -mm + 1e-9), locked, box)


def hollow(lm: LabelMap, value: int, mm: float, side: str = "inside", locked: set[int] = frozenset()) -> Optional[Edit]:
    """Replace a segment by a shell ``mm`` thick along its surface: ``inside`` (the shell is the
    segment's outer ``mm``), ``outside`` (a wall of ``mm`` around it, the segment itself cleared) or
    ``medial`` (half each side)."""
    if side not in HOLLOW:
        raise ValueError(f"unknown side {side!r}; one of {HOLLOW}")
    mask = lm.array == value
    if not mask.any() or mm <= 0:
        return None
    box, m, d = _distances(lm, mask, mm, ("inside",) if side == "inside" else ("inside", "outside"))
    inner = {"inside": mm, "medial": mm / 2, "outside": 0.0}[side]
    outer = mm - inner
    shell_in = m & (d <= inner + 1e-9)
    shell_out = ~m & (d <= outer + 1e-9) & (lm.array[box] == 0) if outer > 0 else np.zeros_like(m)
    cleared = apply(lm, "hollow", 0, m & ~shell_in, locked, box)
    return merge(lm, "hollow", [cleared, apply(lm, "hollow", value, shell_out, locked, box)])
