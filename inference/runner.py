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
import threading
import time
from typing import Callable, Optional

import numpy as np
import torch

from core.errors import DelineateError
from core.geometry import Geometry
from core.labels import LabelMap
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.resample import covering_grid, resample
from core.volume import Volume, luminance
from inference import device as devices
from inference.card import ModelCard
from inference.envelope import entropy_map, sample_step
from inference.image_grid import OnImageGrid

SMALL_OUTPUT = 4_000_000  # values (classes x voxels) below which scipy maps back quicker: a 2D frame, a small crop


class Segmentation:
    """A run's labels on the image's exact grid, with the per-class probabilities there (float16
    [classes, z, y, x], kept for explanations and uncertainty) made the first time they are asked for:
    ``probabilities`` may be given as the array or as a function that makes it."""

    def __init__(self, labels: LabelMap, probabilities, card: ModelCard, device: str, seconds: float,
                 sample: Optional[np.ndarray] = None, removed_outside_body: int = 0, removed_pieces: int = 0) -> None:
        self.labels, self.card, self.device, self.seconds = labels, card, device, seconds
        self.removed_outside_body = removed_outside_body  # voxels the card's inside_body rule removed
        self.removed_pieces = removed_pieces  # voxels the card's most_pieces rule removed
        self._probabilities = probabilities
        self._lock = threading.Lock()
        self._sample = sample
        # (normalised entropy, its grid): envelope.entropy_map of the model-grid probabilities, a few MB
        # kept for the report's most uncertain region (the image-grid probabilities are made only when
        # asked for: a GB for a 512x512x300 CT with seven classes)
        self.uncertainty_map: Optional[tuple] = None

    @property
    def probabilities(self) -> np.ndarray:
        with self._lock:
            if callable(self._probabilities):
                self._probabilities = self._probabilities()
            return self._probabilities

    @probabilities.setter
    def probabilities(self, value: np.ndarray) -> None:
        with self._lock:
            self._probabilities, self._sample = value, None

    @property
    def sample(self) -> np.ndarray:
        """float16 [classes, n]: the probabilities at every step-th voxel of the flat image grid (the
        step envelope.run_uncertainty takes), without making them all."""
        if self._sample is None:
            p = self.probabilities
            self._sample = p.reshape(p.shape[0], -1)[:, ::sample_step(int(np.prod(p.shape[1:])))]
        return self._sample


def import_network_modules() -> None:
    """The MONAI modules the shipped models' runs need (their U-Net and the sliding window), imported
    ahead of the run (app.actions.segmenting.prefetch)."""
    from inference.monai_light import light

    light("monai.networks.nets.unet")
    light("monai.inferers.utils")


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
    """Channels-first float32 on the model grid: [C, z, y, x] (3D) or [C, y, x] (2D); only the card's
    ``mask_from`` region of the image when it names one."""
    if card.mask_from:
        from inference.mask_from import masked

        volume = masked(volume, card.mask_from)
    arr = volume.array
    if volume.is_color and card.in_channels == 1:
        arr = luminance(arr, np.float32)
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
        if x.shape[0] % 2 and x.shape[0] > 1:
            # the last batch: its last window alone, as in the pairs (sw_batch_size 2) this replaced
            # (the CPU kernels give a lone window other last bits than one in a batch of 2 or more)
            y = torch.cat([self._net(x[:-1]), self._net(x[-1:])])
        else:
            y = self._net(x)
        self.done += x.shape[0]
        self.progress(0.1 + 0.8 * min(self.done / self.total, 1.0), f"window {self.done}/{self.total}")
        return y

    def _net(self, x):
        y = self.net(x)
        return y[0] if isinstance(y, (list, tuple)) else y  # deep supervision / UNet++ heads: the full-resolution one


#: voxels of windows per network call on the CPU: one window of a small 3D U-Net per call leaves the
#: cores waiting on per-call work (instance norm, small deep layers); 2M voxels run 1.8-2.3x less CPU
#: time per window than pairs (measured: 32x64x64 and 64x64x64 windows), for ~250 MB
CPU_BATCH_VOXELS = 1 << 21


def batch_size(net: torch.nn.Module, card: ModelCard, device: torch.device, n: int) -> int:
    """Windows per network call: 2 off the CPU and for stochastic networks (whose draws follow the
    batches), else as many as fit CPU_BATCH_VOXELS, even (the forward pass keeps the pairs' numbers)."""
    if device.type != "cpu" or getattr(net, "stochastic", False):
        return 2
    per_window = max(int(np.prod(card.patch_size)), 1)
    return max(2, min(CPU_BATCH_VOXELS // per_window, n + n % 2) // 2 * 2)


def predict(net: torch.nn.Module, x: np.ndarray, card: ModelCard, device: torch.device,
            progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
            sw_batch_size: Optional[int] = None, amp: Optional[bool] = None) -> np.ndarray:
    """Softmax probabilities [classes, *spatial] on the model grid, float32; ``sw_batch_size`` windows
    per network call (default: batch_size)."""
    from inference.monai_light import light

    sliding_window_inference = light("monai.inferers.utils").sliding_window_inference  # not all of MONAI
    roi = list(card.patch_size)
    windows = n_windows(x.shape[1:], roi, card.overlap)
    sw_batch_size = sw_batch_size or batch_size(net, card, device, windows)
    counted = _Counted(net, math.ceil(windows / sw_batch_size) * sw_batch_size, progress, cancel)

    def inferer(t, network):  # monai.inferers.SlidingWindowInferer's call with these settings
        return sliding_window_inference(t, roi, sw_batch_size, network, overlap=card.overlap, mode="gaussian",
                                        padding_mode="replicate", sw_device=device, device="cpu")

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
    ``target`` (inference.image_grid.OnImageGrid: labels first, then the probabilities)."""
    mapped = OnImageGrid(probs, grid, target, slab_voxels, SMALL_OUTPUT)
    labels = mapped.labels(cancel)
    return mapped.probabilities(cancel), labels


def keep_largest(labels: np.ndarray) -> np.ndarray:
    return most_pieces(labels, {"labels": {str(v): 1 for v in np.unique(labels) if v != 0}})[0]


def most_pieces(labels: np.ndarray, rule: dict) -> tuple[np.ndarray, int]:
    """Each label in ``rule["labels"]`` ({value: n}) keeps its n largest connected pieces (a body has
    two kidneys at most). Returns (labels, voxels removed)."""
    from scipy import ndimage

    out, removed = labels, 0
    for key, n in rule["labels"].items():
        wanted = labels == int(key)
        comp, count = ndimage.label(wanted)
        if count <= n:
            continue
        sizes = np.bincount(comp.ravel())
        sizes[0] = 0
        gone = wanted & ~np.isin(comp, np.argsort(-sizes, kind="stable")[:n])  # ties: the first piece
        if out is labels:
            out = labels.copy()
        out[gone] = 0
        removed += int(gone.sum())
    return out, removed


def segment(volume: Volume, card: ModelCard, progress: ProgressFn = no_progress,
            cancel: Optional[CancelToken] = None, device: Optional[str] = None,
            net: Optional[torch.nn.Module] = None, keep_largest_component: Optional[bool] = None,
            on_model: Optional[Callable] = None, on_input: Optional[Callable] = None,
            inside_body: bool = True) -> Segmentation:
    """``on_model(net)`` and ``on_input(x)`` see the network and its input ([C, ...] on the model's
    grid, normalised) as the run uses them (the out-of-distribution guard reads the input's intensities).
    ``inside_body=False`` skips the card's anatomical rules (inside_body, most_pieces), to measure
    the network alone."""
    t0 = time.perf_counter()
    if card.spatial_dims == 2 and not volume.is_2d and card.orientation is not None:
        raise DelineateError(f"{card.id} is a 2D model; this image has {volume.geometry.size[2]} slices")
    dev = devices.pick(device)
    progress(0.0, "preparing")
    inside = None
    if card.mask_from:  # found here so the run can say so and be cancelled; model_input reuses it
        from inference.mask_from import region

        progress(0.0, f"finding the region with {card.mask_from['model']} v{card.mask_from['version']}")
        inside = region(volume, card.mask_from)
        check(cancel)
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
    mapped = OnImageGrid(probs, grid, volume.geometry, small_output=SMALL_OUTPUT)
    labels = mapped.labels(cancel)
    if keep_largest_component if keep_largest_component is not None else card.keep_largest_component:
        labels = keep_largest(labels)
    if inside is not None:
        labels[~inside] = 0
    removed = 0
    if card.inside_body and inside_body:
        from inference.inside_body import remove_outside_body

        rule = card.inside_body
        labels, removed = remove_outside_body(labels, volume.array, volume.geometry, rule["labels"], rule["threshold"])
    pieces = 0
    if card.most_pieces and inside_body:
        labels, pieces = most_pieces(labels, card.most_pieces)
    lm = LabelMap(labels, volume.geometry, card.labels)
    progress(1.0, "done")
    seg = Segmentation(lm, mapped.probabilities, card, str(dev), time.perf_counter() - t0, mapped.sample, removed,
                       pieces)
    seg.uncertainty_map = entropy_map(mapped.probs, grid)
    return seg
