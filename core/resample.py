"""Resampling an array from one grid onto another, through world coordinates (the one way every
layer - display, model input, model output - moves between grids)."""
from __future__ import annotations

import numpy as np

from core.geometry import Geometry


def covering_grid(source: Geometry, spacing) -> Geometry:
    """An LPS-aligned grid with ``spacing`` (x, y, z) that covers ``source``'s voxel centres."""
    n = np.asarray(source.size, dtype=np.float64) - 1
    corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
    world = source.index_to_world(corners)
    lo, hi = world.min(axis=0), world.max(axis=0)
    spacing = np.asarray(spacing, dtype=np.float64)
    size = np.maximum(1, np.round((hi - lo) / spacing).astype(int) + 1)
    return Geometry(tuple(int(s) for s in size), spacing, lo, np.eye(3))


def box_edges(box, source: Geometry, target: Geometry) -> np.ndarray:
    """(2, 3) lowest and highest continuous index (x, y, z) on ``target`` of the outer voxel edges of
    ``box`` (slices z, y, x of ``source``), over its 8 corners (oblique grids)."""
    import itertools

    corners = np.array([[b.start - 0.5 if c == 0 else b.stop - 0.5 for b, c in zip(box[::-1], combo)]
                        for combo in itertools.product((0, 1), repeat=3)])
    ijk = target.world_to_index(source.index_to_world(corners))
    return np.stack([ijk.min(0), ijk.max(0)])


def resample(array: np.ndarray, source: Geometry, target: Geometry, order: int = 1, fill=0) -> np.ndarray:
    """``array`` ([z, y, x] on ``source``) sampled at ``target``'s voxel centres. Integer arrays
    keep their dtype (order 0 for labels); others come back as float32."""
    from scipy import ndimage

    if source.same_grid(target, tol=1e-9):
        return array
    m = target.index_to_index(source)  # target (i, j, k, 1) -> source (i, j, k, 1)
    rev = np.eye(4)[[2, 1, 0, 3]]
    m_arr = rev @ m @ rev  # the same map in [z, y, x] array order
    exact = _voxel_aligned(m_arr, array, target.shape_zyx, fill)
    if exact is not None:
        return exact
    integer = np.issubdtype(array.dtype, np.integer)
    src = array if order == 0 or not integer else array.astype(np.float32)
    if not integer and src.dtype not in (np.float32, np.float64):
        src = src.astype(np.float32)
    out = ndimage.affine_transform(src, m_arr[:3, :3], m_arr[:3, 3], output_shape=target.shape_zyx,
                                   order=order, mode="constant", cval=fill, prefilter=False)
    if integer:
        return (np.rint(out) if order > 0 else out).astype(array.dtype, copy=False)
    return out.astype(np.float32, copy=False)


def _voxel_aligned(m_arr: np.ndarray, array: np.ndarray, shape, fill):
    """Grids that share voxel centres (flips, axis swaps, whole-voxel shifts: a SEG's frames, a
    crop) map by indexing, exactly - interpolation would blur the edges by rounding error."""
    r = np.rint(m_arr[:3, :3])
    off = m_arr[:3, 3]
    if not (np.allclose(m_arr[:3, :3], r, atol=1e-4) and np.allclose(off, np.rint(off), atol=1e-3)
            and np.array_equal(np.abs(r).sum(axis=0), np.ones(3)) and np.array_equal(np.abs(r).sum(axis=1), np.ones(3))):
        return None
    off = np.rint(off).astype(int)
    perm = [int(np.argmax(np.abs(r[:, t]))) for t in range(3)]
    moved = array.transpose(perm)
    idx = [int(r[perm[t], t]) * np.arange(shape[t]) + off[perm[t]] for t in range(3)]
    valid = [(i >= 0) & (i < moved.shape[t]) for t, i in enumerate(idx)]
    integer = np.issubdtype(array.dtype, np.integer)
    out = np.full(shape, fill, dtype=array.dtype if integer else np.float32)
    out[np.ix_(*valid)] = moved[np.ix_(*[i[v] for i, v in zip(idx, valid)])]
    return out
