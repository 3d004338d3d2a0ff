"""A model's probabilities [C, z, y, x] on its grid, read on the image's own grid: the labels (the
arg-max of the linear interpolation through world coordinates), and the float16 probabilities there
only when something asks for them (explanations, a fractional SEG: classes x voxels x 2 bytes, 300 MB
for a 512x512x120 CT).

Outside the model grid the background class is 1 and the others 0 (as scipy's 'constant' mode, which
the per-class path used). Grids whose axes are parallel (the usual case: the model grid is LPS-aligned,
and so are most images) interpolate separably: through-plane first, then each slice in-plane with
grid_sample; oblique ones through a 3D grid_sample. A slab of target slices at a time, so memory stays
bounded.

Labels on parallel grids skip most of the interpolation: bilinear weights are positive and sum to one,
so where one class beats every other by more than MARGIN at all four corners of a model-grid cell
(after the through-plane step), it wins everywhere inside that cell, and the image voxels there take
it without being interpolated. Only voxels in the other cells (organ borders: a few per cent) are
interpolated, with the very coordinates and kernel of the full pass, so the labels are the full
pass's arg-max, bit for bit."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from core.geometry import Geometry
from core.progress import CancelToken, check
from core.resample import resample
from inference.envelope import sample_step

#: a class this far above every other at a cell's corners wins inside it despite float32 rounding
#: and grid_sample taking the neighbouring cell at a coordinate that rounds onto an edge
MARGIN = 1e-3
_EDGE = 1e-3  # voxels: target centres this close outside the model grid (rounding) still sample its edge


def label_dtype(n_classes: int):
    return np.uint8 if n_classes <= 256 else np.uint16


class OnImageGrid:
    def __init__(self, probs: np.ndarray, grid: Geometry, target: Geometry, slab_voxels: int = 1 << 21,
                 small_output: int = 4_000_000) -> None:
        self.probs, self.grid, self.target, self.slab_voxels = probs, grid, target, slab_voxels
        self.n_classes = probs.shape[0]
        self.same = grid.same_grid(target, tol=1e-9)
        # below ``small_output`` values scipy is quicker (labels from its float16 values, as ever)
        self.small = not self.same and self.n_classes * int(np.prod(target.shape_zyx)) < small_output
        self.m = target.index_to_index(grid)  # target (i, j, k, 1) -> model grid (i, j, k, 1)
        self.parallel = bool(np.allclose(self.m[:3, :3], np.diag(np.diag(self.m[:3, :3])), atol=1e-6))
        self.sample: Optional[np.ndarray] = None  # float16 [C, n]: every sample_step-th voxel of the flat grid
        self._back: Optional[np.ndarray] = None
        self._src = None

    # -- labels -----------------------------------------------------------------------------------------
    def labels(self, cancel: Optional[CancelToken] = None) -> np.ndarray:
        """The labels on the target grid; sets ``sample`` on the way."""
        n_voxels = int(np.prod(self.target.shape_zyx))
        step = sample_step(n_voxels)
        if self.same or self.small:
            back = self.probabilities(cancel)
            self.sample = back.reshape(self.n_classes, -1)[:, ::step]
            return np.argmax(self.probs if self.same else back, axis=0).astype(label_dtype(self.n_classes))
        nz, ny, nx = self.target.shape_zyx
        labels = np.empty((nz, ny, nx), label_dtype(self.n_classes))
        picked = []
        with torch.inference_mode():
            if self.parallel:
                for k0, k1, lab, sample in self._parallel_labels(cancel, step):
                    labels[k0:k1] = lab
                    picked.append(sample)
            else:
                for k0, k1, out in self.slabs(cancel):  # out: [slices, C, y, x]
                    labels[k0:k1] = labels_of(out).numpy()
                    at = torch.from_numpy(_sampled_at(k0, k1, ny * nx, step))
                    flat = out.reshape(k1 - k0, self.n_classes, ny * nx)
                    picked.append(flat[at // (ny * nx), :, at % (ny * nx)].T.half().numpy())
        self.sample = np.concatenate(picked, axis=1)
        return labels

    def _parallel_labels(self, cancel, step: int):
        """(first slice, end slice, labels [slices, y, x], float16 sample [C, n]) a slab at a time. Small
        arrays: numpy, one thread (torch's two-thread ops wait on each other when the cores are busy)."""
        src = self._source()
        _, sz, sy, sx = src.shape
        nz, ny, nx = self.target.shape_zyx
        (lx, _, ix), (ly, _, iy), gx, gy = self._in_plane(src)
        lx, ly, gx, gy = lx.numpy(), ly.numpy(), gx.numpy(), gy.numpy()
        for ks in self._slab_slices(cancel):
            lz, wz, iz = _axis_weights(self.m[2, 2], self.m[2, 3], ks, sz)
            slab = _lerp(src, 1, lz, wz).permute(1, 0, 2, 3)  # [slices, C, sy, sx], as _separable has it
            code = np.take(np.take(_sure_cells(slab.numpy()), ly, axis=1), lx, axis=2)  # per target voxel
            unsure = np.nonzero(code == 0)
            code -= 1  # the labels; the unsure ones (now the dtype's maximum) are interpolated here
            lab = code.astype(label_dtype(self.n_classes), copy=False)
            if len(unsure[0]):
                lab[unsure] = labels_np(_points(slab, unsure[0], gx[unsure[2]], gy[unsure[1]]))
            at = _sampled_at(int(ks[0]), int(ks[-1]) + 1, ny * nx, step)
            ps, pj, pi = at // (ny * nx), at % (ny * nx) // nx, at % nx
            picked = _points(slab, ps, gx[pi], gy[pj]).T.copy()  # [C, n]
            outside = ~iz[ps] | ~iy[pj] | ~ix[pi]
            picked[:, outside] = 0.0
            picked[0, outside] = 1.0
            lab[~iz] = 0  # outside the model grid: background
            lab[:, ~iy] = 0
            lab[:, :, ~ix] = 0
            yield int(ks[0]), int(ks[-1]) + 1, lab, picked.astype(np.float16)

    # -- probabilities ------------------------------------------------------------------------------------
    def probabilities(self, cancel: Optional[CancelToken] = None) -> np.ndarray:
        """float16 [C, z, y, x] on the target grid, made once."""
        if self._back is not None:
            return self._back
        if self.same:
            self._back = self.probs.astype(np.float16)
        elif self.small:
            self._back = np.stack([resample(p, self.grid, self.target, order=1, fill=1.0 if c == 0 else 0.0)
                                   for c, p in enumerate(self.probs)]).astype(np.float16)
        else:
            back = torch.empty((self.n_classes,) + tuple(self.target.shape_zyx), dtype=torch.float16)
            with torch.inference_mode():
                for k0, k1, out in self.slabs(cancel):
                    back[:, k0:k1].copy_(out.transpose(0, 1))  # torch's float16 rounding: numpy's is 50x slower
            self._back = back.numpy()
        return self._back

    def slabs(self, cancel=None):
        """(first slice, end slice, float32 [slices, C, y, x]) over the target, a slab at a time."""
        src = self._source()
        ny, nx = self.target.shape_zyx[1:]
        in_plane = self._in_plane(src) if self.parallel else None
        for ks in self._slab_slices(cancel):
            out = (_separable(src, self.m, ks, in_plane) if self.parallel
                   else _sampled(src, self.m, self.grid, ks, ny, nx))
            yield int(ks[0]), int(ks[-1]) + 1, out

    def _slab_slices(self, cancel):
        nz, ny, nx = self.target.shape_zyx
        step = max(1, self.slab_voxels // max(ny * nx, 1))
        for z0 in range(0, nz, step):
            check(cancel)
            yield np.arange(z0, min(nz, z0 + step))

    def _source(self) -> torch.Tensor:
        if self._src is None:
            self._src = torch.from_numpy(np.ascontiguousarray(self.probs, dtype=np.float32))
        return self._src

    def _in_plane(self, src: torch.Tensor):
        """x and y: (lower index, weight, inside) each, and grid_sample's normalised coordinates."""
        _, _, sy, sx = src.shape
        ny, nx = self.target.shape_zyx[1:]
        ax = _axis_weights(self.m[0, 0], self.m[0, 3], np.arange(nx), sx)
        ay = _axis_weights(self.m[1, 1], self.m[1, 3], np.arange(ny), sy)
        gx = (2 * (ax[0] + ax[1]) / max(sx - 1, 1) - 1) if sx > 1 else torch.zeros(nx)
        gy = (2 * (ay[0] + ay[1]) / max(sy - 1, 1) - 1) if sy > 1 else torch.zeros(ny)
        return ax, ay, gx, gy


def _points(slab: torch.Tensor, slices: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """[points, C]: ``slab`` [slices, C, y, x] read at grid_sample coordinates (``gx``, ``gy``) in slices
    ``slices`` (ascending), one grid_sample over every slice (each slice's points padded to the most
    any slice has)."""
    n, n_slices = len(slices), slab.shape[0]
    if n == 0:
        return np.zeros((0, slab.shape[1]), np.float32)
    counts = np.bincount(slices, minlength=n_slices)
    rank = np.arange(n) - (np.cumsum(counts) - counts)[slices]
    grid = np.zeros((n_slices, 1, int(counts.max()), 2), np.float32)
    grid[slices, 0, rank, 0], grid[slices, 0, rank, 1] = gx, gy
    out = F.grid_sample(slab, torch.from_numpy(grid), mode="bilinear", padding_mode="border", align_corners=True)
    return out.numpy()[slices, :, 0, rank]


def _sampled_at(k0: int, k1: int, per_slice: int, step: int) -> np.ndarray:
    """Indices, within slices k0..k1-1, of the flat grid's every step-th voxel."""
    first, last = k0 * per_slice, k1 * per_slice
    return np.arange(first + (-first) % step, last, step) - first


def _sure_cells(slab: np.ndarray) -> np.ndarray:
    """[slices, C, sy, sx] -> [slices, sy, sx]: 1 + the class ahead by MARGIN of every other at all four
    corners of the in-plane cell from that pixel to the next in y and x (the last row and column pair
    with themselves), 0 where no class is (uint8, or uint16 past 254 classes)."""
    labels = labels_np(np.moveaxis(slab, 1, -1))
    best = slab.max(axis=1)
    ahead = (slab > (best - MARGIN)[:, None]).sum(axis=1) == 1  # only the best is that close
    for axis in (2, 1):  # x, then y: after both, all four corners agree and are ahead
        ahead &= _next(ahead, axis) & (_next(labels, axis) == labels)
    code = labels.astype(np.uint8 if slab.shape[1] < 255 else np.uint16) + 1
    code[~ahead] = 0
    return code


def _next(a: np.ndarray, axis: int) -> np.ndarray:
    """``a`` one step on along ``axis``, the last entry repeated."""
    idx = np.minimum(np.arange(a.shape[axis]) + 1, a.shape[axis] - 1)
    return np.take(a, idx, axis=axis)


def labels_np(values: np.ndarray) -> np.ndarray:
    """labels_of for [..., C] in numpy: the first class of a tie, NaN as torch's maximum has it."""
    n = values.shape[-1]
    best = values[..., 0].copy()
    labels = np.zeros(best.shape, label_dtype(n))
    for c in range(1, n):
        labels[values[..., c] > best] = c
        np.maximum(best, values[..., c], out=best)
    return labels


def _axis_weights(scale: float, offset: float, targets: np.ndarray, n: int):
    """Linear interpolation along one axis: (lower source index, upper weight, inside) per target."""
    pos = scale * targets + offset
    inside = (pos >= -_EDGE) & (pos <= n - 1 + _EDGE)
    pos = np.clip(pos, 0, n - 1)
    lo = np.minimum(np.floor(pos), max(n - 2, 0)).astype(np.int64)
    return torch.from_numpy(lo), torch.from_numpy((pos - lo).astype(np.float32)), inside


def _lerp(t: torch.Tensor, dim: int, lo: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    shape = [1] * t.dim()
    shape[dim] = -1
    a = t.index_select(dim, lo)
    if t.shape[dim] == 1:
        return a
    return torch.lerp(a, t.index_select(dim, lo + 1), w.view(shape))


def labels_of(out: torch.Tensor):
    """Class arg-max of [slices, C, ...], the first class of a tie, one class at a time (torch's
    arg-max across the class dim is 3x slower on the CPU)."""
    n = out.shape[1]
    best = out[:, 0].clone()
    labels = torch.zeros(best.shape, dtype=torch.uint8 if n <= 256 else torch.int32)
    for c in range(1, n):
        labels.masked_fill_(out[:, c] > best, c)
        torch.maximum(best, out[:, c], out=best)
    return labels


def _fill_outside(out: torch.Tensor, outside_z, outside_y, outside_x) -> torch.Tensor:
    """[slices, C, y, x]: background 1, the other classes 0 where the target lies outside the model grid."""
    for dim, outside in ((0, outside_z), (2, outside_y), (3, outside_x)):
        if outside.any():
            idx = torch.from_numpy(np.flatnonzero(outside))
            out.index_fill_(dim, idx, 0.0)
            out.select(1, 0).index_fill_(dim if dim == 0 else dim - 1, idx, 1.0)
    return out


def _separable(src: torch.Tensor, m: np.ndarray, ks: np.ndarray, in_plane) -> torch.Tensor:
    """Through-plane linear interpolation first (two source slices per target slice), then each
    slice in-plane with grid_sample on a separable grid (its bilinear kernel is quicker than index
    gathers or interpolation matrices). [slices, C, y, x]."""
    (_, _, ix), (_, _, iy), gx, gy = in_plane
    lz, wz, iz = _axis_weights(m[2, 2], m[2, 3], ks, src.shape[1])
    slab = _lerp(src, 1, lz, wz).permute(1, 0, 2, 3)  # (slices, C, y, x)
    ny, nx = len(gy), len(gx)
    where = torch.stack([gx[None, :].expand(ny, nx), gy[:, None].expand(ny, nx)], dim=-1)
    out = F.grid_sample(slab, where[None].expand(len(ks), -1, -1, -1), mode="bilinear", padding_mode="border",
                        align_corners=True)
    return _fill_outside(out, ~iz, ~iy, ~ix)


def _sampled(src: torch.Tensor, m: np.ndarray, grid: Geometry, ks: np.ndarray, ny: int, nx: int) -> torch.Tensor:
    """[slices, C, y, x] (a view)."""
    size = np.asarray(grid.size, dtype=np.float64)  # (x, y, z)
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    pts = np.stack([np.broadcast_to(ii, (len(ks), ny, nx)), np.broadcast_to(jj, (len(ks), ny, nx)),
                    np.broadcast_to(ks[:, None, None], (len(ks), ny, nx))], axis=-1).astype(np.float64)
    where = pts @ m[:3, :3].T + m[:3, 3]  # model-grid (i, j, k) of each target voxel
    inside = np.all((where >= -_EDGE) & (where <= size - 1 + _EDGE), axis=-1)
    norm = np.where(size > 1, 2 * np.clip(where, 0, size - 1) / np.maximum(size - 1, 1) - 1, 0.0)
    out = F.grid_sample(src[None], torch.from_numpy(norm.astype(np.float32))[None], mode="bilinear",
                        padding_mode="border", align_corners=True)[0]
    outside = torch.from_numpy(~inside)
    out[:, outside] = 0.0
    out[0, outside] = 1.0
    return out.transpose(0, 1)
