"""Run a model on a Volume: preprocessing from its card, sliding-window inference with Gaussian
blending, and the result (labels and per-class probabilities) on the image's exact grid.

    segment(volume, card, progress, cancel, device) -> Segmentation

The image is resampled once onto the model's grid (LPS-aligned, the card's spacing) through world
coordinates, so oblique and anisotropic images need no special case; probabilities are resampled
back onto the image's own grid before the arg-max, so labels share its geometry exactly. A 2D model
whose card names a spacing gets a 2D image at that pixel size in the image's own axes (an ultrasound
frame scanned at 128 or 1024 pixels over one field of view reaches the network at one scale).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from core.errors import DelineateError
from core.geometry import Geometry
from core.labels import LabelMap
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.resample import covering_grid, resample
from core.volume import Volume
from inference import device as devices
from inference.card import ModelCard


@dataclass(eq=False)
class Segmentation:
    labels: LabelMap
    probabilities: np.ndarray  # float16 [classes, z, y, x] on the image's grid (kept for XAI/uncertainty)
    card: ModelCard
    device: str
    seconds: float


def load_model(card: ModelCard, device: Optional[torch.device] = None) -> torch.nn.Module:
    from inference import networks
    from inference.weights import load_into

    device = device or devices.pick()
    if card.architecture in networks.BUILT:
        net = networks.build(card.architecture, card.spatial_dims, card.in_channels, card.n_classes,
                             card.parameters, card.patch_size)
        load_into(net, card.weights_path, card.weights_sha256)
    else:
        from inference.importers import load_imported

        net = load_imported(card, device)
    return net.to(device).eval()


# -- grids and intensities --------------------------------------------------------------------------
def model_grid(volume: Volume, card: ModelCard) -> Geometry:
    """Where the network sees the image: the image's own grid, or LPS-aligned at the card's spacing."""
    g = volume.geometry
    if card.spatial_dims == 2 and volume.is_2d:
        # a 2D model that names a pixel size gets every image at that size (in-plane; one slice stays one)
        return image_axes_grid(g, [card.spacing[0], card.spacing[1], g.spacing[2]]) if card.spacing else g
    if card.orientation is None:
        return g
    if card.orientation == "image":  # the image's own axes, at the card's spacing (nnU-Net)
        return image_axes_grid(g, card.spacing or g.spacing)
    spacing = card.spacing or [g.spacing[int(np.argmax(np.abs(g.direction[m, :])))] for m in range(3)]
    return covering_grid(g, spacing)


def image_axes_grid(g: Geometry, spacing) -> Geometry:
    """The image's own axes and first voxel centre, at ``spacing`` (x, y, z mm)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    size = np.maximum(1, np.round((np.asarray(g.size) - 1) * g.spacing / spacing).astype(int) + 1)
    return Geometry(tuple(int(v) for v in size), spacing, g.origin, g.direction)


def to_model_axes(x: np.ndarray, card: ModelCard) -> np.ndarray:
    """[C, z, y, x] on an LPS-aligned grid -> the network's axes ("RAS": [C, x, y, z], x and y flipped)."""
    if card.orientation == "RAS" and x.ndim == 4:
        return np.ascontiguousarray(np.transpose(x, (0, 3, 2, 1))[:, ::-1, ::-1])
    return x


def from_model_axes(y: np.ndarray, card: ModelCard) -> np.ndarray:
    if card.orientation == "RAS" and y.ndim == 4:
        return np.ascontiguousarray(np.transpose(y[:, ::-1, ::-1], (0, 3, 2, 1)))
    return y


def normalise(x: np.ndarray, spec: dict) -> np.ndarray:
    return _normalise(x.astype(np.float32, copy=False), spec).astype(np.float32, copy=False)


def _normalise(x: np.ndarray, spec: dict) -> np.ndarray:
    kind = spec.get("kind", "none")
    if kind == "zscore":
        # statistics over all voxels unless the card asks for foreground only: "above the 1st
        # percentile" is fragile (exact-zero backgrounds drop out, noisy ones stay in)
        sample = x[x > np.percentile(x, 1)] if spec.get("foreground", False) else x
        sample = sample if sample.size else x
        return (x - float(sample.mean())) / max(float(sample.std()), 1e-6)
    if kind == "ct_clip_zscore":  # nnU-Net's CTNormalization: dataset percentiles and statistics
        return (np.clip(x, float(spec["low"]), float(spec["high"])) - float(spec["mean"])) / max(float(spec["std"]), 1e-6)
    if kind == "ct_window":
        lo, hi = float(spec["low"]), float(spec["high"])
        return (np.clip(x, lo, hi) - lo) / (hi - lo)
    if kind == "percentile":
        lo, hi = np.percentile(x, [spec.get("low", 1.0), spec.get("high", 99.0)])
        return np.clip((x - lo) / max(hi - lo, 1e-6), spec.get("clip_low", -1.0), spec.get("clip_high", 2.0))
    if kind == "minmax":
        lo, hi = float(x.min()), float(x.max())
        return (x - lo) / max(hi - lo, 1e-6)
    return x


def model_input(volume: Volume, card: ModelCard, grid: Geometry) -> np.ndarray:
    """Channels-first float32 on the model grid: [C, z, y, x] (3D) or [C, y, x] (2D)."""
    arr = volume.array
    if volume.is_color and card.in_channels == 1:
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    chans = [arr[..., c] for c in range(card.in_channels)] if volume.is_color and card.in_channels > 1 else [arr]
    out = []
    for ch in chans:
        on_grid = resample(ch.astype(np.float32, copy=False), volume.geometry, grid, order=1,
                           fill=float(np.min(ch)))
        out.append(normalise(on_grid, card.normalisation))
    x = np.stack(out)
    return x[:, 0] if card.spatial_dims == 2 else x


# -- sliding window ------------------------------------------------------------------------------------
def n_windows(shape, roi, overlap: float) -> int:
    total = 1
    for s, r in zip(shape, roi):
        if s <= r:
            continue
        step = max(int(r * (1 - overlap)), 1)
        total *= math.ceil((s - r) / step) + 1
    return total


class _Counted(torch.nn.Module):
    """The network, reporting each window batch and honouring Cancel between batches."""

    def __init__(self, net, total: int, progress: ProgressFn, cancel: Optional[CancelToken]) -> None:
        super().__init__()
        self.net, self.total, self.done, self.progress, self.cancel = net, max(total, 1), 0, progress, cancel

    def forward(self, x):
        check(self.cancel)
        y = self.net(x)
        if isinstance(y, (list, tuple)):  # deep supervision / UNet++ heads: the full-resolution one
            y = y[0]
        self.done += x.shape[0]
        self.progress(0.1 + 0.8 * min(self.done / self.total, 1.0), f"window {self.done}/{self.total}")
        return y


def predict(net: torch.nn.Module, x: np.ndarray, card: ModelCard, device: torch.device,
            progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
            sw_batch_size: int = 2, amp: Optional[bool] = None) -> np.ndarray:
    """Softmax probabilities [classes, *spatial] on the model grid, float32."""
    from monai.inferers import SlidingWindowInferer

    roi = list(card.patch_size)
    counted = _Counted(net, math.ceil(n_windows(x.shape[1:], roi, card.overlap) / sw_batch_size) * sw_batch_size,
                       progress, cancel)
    inferer = SlidingWindowInferer(roi_size=roi, sw_batch_size=sw_batch_size, overlap=card.overlap,
                                   mode="gaussian", padding_mode="replicate", sw_device=device, device="cpu")
    dtype = devices.autocast_dtype(device) if amp is not False else None
    t = torch.from_numpy(np.ascontiguousarray(x))[None]
    with torch.inference_mode():
        if dtype is not None:
            with torch.autocast(device.type, dtype=dtype):
                logits = inferer(t, counted)
        else:
            logits = inferer(t, counted)
        probs = torch.softmax(logits.float(), dim=1)[0]
    return probs.numpy()


def to_image_grid(probs: np.ndarray, grid: Geometry, target: Geometry, cancel: Optional[CancelToken] = None,
                  slab_voxels: int = 1 << 21) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [C, z, y, x] on the model's ``grid`` -> (float16 probabilities, labels) on
    ``target``, linear through world coordinates, every class at once (torch, multithreaded), a slab
    of target slices at a time so memory stays bounded. Outside the model grid the background class
    is 1 and the others 0 (as scipy's 'constant' mode, which the per-class path used: it took 15.9 s
    of a 512x512x120 CT's 51-78 s). Grids whose axes are parallel (the usual case: the model grid is
    LPS-aligned, and so are most images) interpolate separably, one axis at a time; oblique ones
    through grid_sample."""
    if grid.same_grid(target, tol=1e-9):
        return probs.astype(np.float16), np.argmax(probs, axis=0).astype(_label_dtype(probs.shape[0]))
    if probs.shape[0] * int(np.prod(target.shape_zyx)) < SMALL_OUTPUT:  # below this scipy is quicker
        back = np.stack([resample(p, grid, target, order=1, fill=1.0 if c == 0 else 0.0)
                         for c, p in enumerate(probs)]).astype(np.float16)
        return back, np.argmax(back, axis=0).astype(_label_dtype(probs.shape[0]))
    m = target.index_to_index(grid)  # target (i, j, k, 1) -> model grid (i, j, k, 1)
    n_classes = probs.shape[0]
    nz, ny, nx = target.shape_zyx
    back = np.empty((n_classes, nz, ny, nx), np.float16)
    labels = np.empty((nz, ny, nx), _label_dtype(n_classes))
    src = torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32))
    step = max(1, slab_voxels // max(ny * nx, 1))
    parallel = np.allclose(m[:3, :3], np.diag(np.diag(m[:3, :3])), atol=1e-6)
    with torch.inference_mode():
        for z0 in range(0, nz, step):
            check(cancel)
            ks = np.arange(z0, min(nz, z0 + step))
            out = _separable(src, m, ks, ny, nx) if parallel else _sampled(src, m, grid, ks, ny, nx)
            back[:, ks[0]:ks[-1] + 1] = out.numpy()
            labels[ks[0]:ks[-1] + 1] = _argmax(out).numpy()
    return back, labels


def _label_dtype(n_classes: int):
    return np.uint8 if n_classes <= 256 else np.uint16


SMALL_OUTPUT = 4_000_000  # values (classes x voxels): a 2D frame, a small crop
_EDGE = 1e-3  # voxels: target centres this close outside the model grid (rounding) still sample its edge


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


def _argmax(out: torch.Tensor) -> torch.Tensor:
    """Class arg-max, one class at a time (torch's arg-max across the leading dim is slow on the CPU)."""
    best, labels = out[0].clone(), torch.zeros(out.shape[1:], dtype=torch.int64)
    for c in range(1, out.shape[0]):
        better = out[c] > best
        labels[better] = c
        torch.maximum(best, out[c], out=best)
    return labels


def _fill_outside(out: torch.Tensor, outside_z, outside_y, outside_x) -> torch.Tensor:
    for dim, outside in ((1, outside_z), (2, outside_y), (3, outside_x)):
        if outside.any():
            idx = [slice(None)] * 4
            idx[dim] = torch.from_numpy(outside)
            out[tuple(idx)] = 0.0
            idx[0] = 0
            out[tuple(idx)] = 1.0
    return out


def _separable(src: torch.Tensor, m: np.ndarray, ks: np.ndarray, ny: int, nx: int) -> torch.Tensor:
    """Through-plane linear interpolation first (two source slices per target slice), then each
    slice in-plane with grid_sample on a separable grid (its bilinear kernel is quicker than index
    gathers or interpolation matrices)."""
    import torch.nn.functional as F

    _, sz, sy, sx = src.shape
    lz, wz, iz = _axis_weights(m[2, 2], m[2, 3], ks, sz)
    lx, wx, ix = _axis_weights(m[0, 0], m[0, 3], np.arange(nx), sx)
    ly, wy, iy = _axis_weights(m[1, 1], m[1, 3], np.arange(ny), sy)
    slab = _lerp(src, 1, lz, wz).permute(1, 0, 2, 3)  # (slices, C, y, x)
    gx = (2 * (lx + wx) / max(sx - 1, 1) - 1) if sx > 1 else torch.zeros(nx)
    gy = (2 * (ly + wy) / max(sy - 1, 1) - 1) if sy > 1 else torch.zeros(ny)
    where = torch.stack([gx[None, :].expand(ny, nx), gy[:, None].expand(ny, nx)], dim=-1)
    out = F.grid_sample(slab, where[None].expand(len(ks), -1, -1, -1), mode="bilinear", padding_mode="border",
                        align_corners=True).permute(1, 0, 2, 3)
    return _fill_outside(out.contiguous(), ~iz, ~iy, ~ix)


def _sampled(src: torch.Tensor, m: np.ndarray, grid: Geometry, ks: np.ndarray, ny: int, nx: int) -> torch.Tensor:
    import torch.nn.functional as F

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
    return out


def keep_largest(labels: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    out = labels.copy()
    for v in np.unique(labels):
        if v == 0:
            continue
        comp, n = ndimage.label(labels == v)
        if n > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            out[(comp != int(np.argmax(sizes))) & (labels == v)] = 0
    return out


def segment(volume: Volume, card: ModelCard, progress: ProgressFn = no_progress,
            cancel: Optional[CancelToken] = None, device: Optional[str] = None,
            net: Optional[torch.nn.Module] = None, keep_largest_component: Optional[bool] = None,
            on_model: Optional[Callable] = None, on_input: Optional[Callable] = None) -> Segmentation:
    """``on_model(net)`` and ``on_input(x)`` see the network and its input ([C, ...] on the model's
    grid, normalised) as the run uses them (the out-of-distribution guard reads the input's intensities)."""
    t0 = time.perf_counter()
    if card.spatial_dims == 2 and not volume.is_2d and card.orientation is not None:
        raise DelineateError(f"{card.id} is a 2D model; this image has {volume.geometry.size[2]} slices")
    dev = devices.pick(device)
    progress(0.0, "preparing")
    grid = model_grid(volume, card)
    x = model_input(volume, card, grid)
    if on_input is not None:
        on_input(x)
    check(cancel)
    net = net if net is not None else load_model(card, dev)
    if on_model is not None:
        on_model(net)
    progress(0.1, "running")
    probs = from_model_axes(predict(net, to_model_axes(x, card), card, dev, progress, cancel), card)
    check(cancel)
    progress(0.9, "mapping back to the image grid")
    if card.spatial_dims == 2:
        probs = probs[:, None]
    back, labels = to_image_grid(probs, grid, volume.geometry, cancel)
    if keep_largest_component if keep_largest_component is not None else card.keep_largest_component:
        labels = keep_largest(labels)
    lm = LabelMap(labels, volume.geometry, card.labels)
    progress(1.0, "done")
    return Segmentation(lm, back, card, str(dev), time.perf_counter() - t0)
