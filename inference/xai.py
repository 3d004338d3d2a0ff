"""Why the model segmented what it did, and where it is unsure - as maps on the image's exact grid.

For a label and a region of interest (default: where the model predicted that label), the target
is the summed logit of the label inside the region (Seg-Grad-CAM). Volumes larger than one patch
are handled window by window as in inference: only windows touching the region are explained, and
their maps are blended with the same Gaussian weights.

- gradcam: gradient x activation of one layer, summed over channels (HiResCAM; default layer: a
  decoder layer at 1/2 resolution)
- occlusion: drop in the target when a block's signal is replaced by the image blurred at 32 mm
  (``blurred``), each block hidden in the one window whose centre is nearest; each block's drop
  divided over its voxels by their first-order share (gradient x change) and blended between blocks
- ig: integrated gradients (captum) from a flat baseline, |attribution| summed over channels
- uncertainty: predictive entropy (and mutual information) over test-time augmentation
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from core.errors import DelineateError
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.resample import resample
from core.volume import Volume
from inference import device as devices
from inference.card import ModelCard
from inference.runner import from_model_axes, load_model, model_grid, model_input, segment, to_model_axes

from inference.xai_text import DESCRIPTIONS, LEGENDS, METHODS  # noqa: E402,F401 - torch-free, for the GUI


@dataclass(eq=False)
class Explanation:
    values: np.ndarray  # float32 [z, y, x] on the image's grid, in [0, 1]
    method: str
    label: int
    extra: dict  # method-specific: per-segment scores, mutual information, ...


def _windows(shape, roi, overlap):
    """Window start positions per axis (as MONAI's sliding window lays them out)."""
    starts = []
    for s, r in zip(shape, roi):
        if s <= r:
            starts.append([0])
            continue
        step = max(int(r * (1 - overlap)), 1)
        n = math.ceil((s - r) / step) + 1
        starts.append(sorted({min(i * step, s - r) for i in range(n)}))
    return [tuple(p) for p in np.array(np.meshgrid(*starts, indexing="ij")).reshape(len(shape), -1).T]


def _gaussian(roi) -> np.ndarray:
    from monai.data.utils import compute_importance_map

    return compute_importance_map(list(roi), mode="gaussian", sigma_scale=0.125).numpy().astype(np.float32)


def pick_layer(net: torch.nn.Module, x: torch.Tensor, outputs: Optional[dict] = None) -> str:
    """The last convolution whose output is at 1/2 of the input resolution (a decoder layer with
    semantic features and usable resolution); else the last one at 1/4, else the last conv.
    ``outputs`` (a dict) receives the chosen layer's output for ``x``: the same forward pass."""
    shapes: dict[str, tuple] = {}
    kept: dict[str, torch.Tensor] = {}
    size = tuple(x.shape[2:])
    wanted = {tuple(d // f for d in size) for f in (2, 4)}

    def record(mod, i, o, n):
        shapes[n] = tuple(o.shape[2:])
        if outputs is not None and (shapes[n] in wanted or n == last):  # candidates only: memory
            kept[n] = o.detach().float()

    convs = [(n, m) for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d,
                                                                        torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d))]
    last = convs[-1][0] if convs else None
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: record(mod, i, o, n)) for n, m in convs]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    if not shapes:
        raise DelineateError("the network has no convolution layer for Grad-CAM")
    name = list(shapes)[-1]
    for factor in (2, 4):
        names = [n for n, s in shapes.items() if tuple(s) == tuple(d // factor for d in size)]
        if names:
            name = names[-1]
            break
    if outputs is not None and name in kept:
        outputs["a"] = kept[name]
    return name


def _target(logits: torch.Tensor, label: int, weights: torch.Tensor) -> torch.Tensor:
    out = logits[0] if isinstance(logits, (list, tuple)) else logits
    return (out[:, label].float() * weights).flatten(1).sum(1)


def _cut_at(net, layer, held):
    """Forward hook that detaches the layer's output: the backward pass then runs through the
    network's tail only, not all of it."""
    def cut(_module, _inputs, output):
        held["a"] = output.detach().requires_grad_(True)
        return held["a"]

    return dict(net.named_modules())[layer].register_forward_hook(cut)


def _activation(net, x, layer) -> torch.Tensor:
    held = {}
    handle = _cut_at(net, layer, held)
    try:
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
    return held["a"].detach().float()


def _gradcam_window(net, xw, label, tw, layer, a_ref):
    held = {}
    handle = _cut_at(net, layer, held)
    try:
        with torch.enable_grad():
            (g,) = torch.autograd.grad(_target(net(xw), label, tw).sum(), held["a"])
    finally:
        handle.remove()
    a, g = held["a"].detach().float(), g.float()
    # HiResCAM (Draelos & Carin 2020): gradient x activation per position, summed over channels.
    # Classic Grad-CAM first averages each channel's gradient over the whole window; for a voxel-wise
    # target those averages nearly cancel, and whether the sum survives the ReLU then depends on
    # rounding (fp32 and bf16 gave different maps). The activation is taken relative to that of a
    # signal-free image (the reference): features the empty background produces anyway carry no
    # evidence, so background the network sees as empty gets no mass.
    cam = (g * (a - a_ref)).sum(1, keepdim=True)
    mode = "trilinear" if cam.ndim == 5 else "bilinear"
    return torch.nn.functional.interpolate(cam, size=xw.shape[2:], mode=mode, align_corners=False)[:, 0].numpy()


def _local_reach(net, xw, label, layer) -> int:
    """How far (in layer positions) the layer's features reach one output voxel through the
    network's tail: where the gradient of the window's centre logit is above 1 % of its peak.
    Normalisation layers couple every position weakly (instance statistics); that coupling is
    below the threshold, and is what lit background far from the region the network cannot use."""
    held = {}
    handle = _cut_at(net, layer, held)
    try:
        with torch.enable_grad():
            out = net(xw[:1])
            out = out[0] if isinstance(out, (list, tuple)) else out
            centre = tuple(s // 2 for s in out.shape[2:])
            (g,) = torch.autograd.grad(out[(0, label) + centre].float(), held["a"])
    finally:
        handle.remove()
    mag = g[0].abs().sum(0)
    where = torch.nonzero(mag > 0.01 * mag.max())
    mid = torch.tensor([c * m // o for c, m, o in zip(centre, mag.shape, out.shape[2:])], device=where.device)
    return int((where - mid).abs().max()) if where.numel() else 0


def chunks(items: list, batch: int) -> list:
    """``items`` in near-equal runs of ``batch`` to ``2 * batch - 1``, never a lone one where two or
    more are left: on a CPU a 3D U-Net ran one window alone about 3x slower per window than two
    or more at once."""
    edges = np.linspace(0, len(items), max(1, len(items) // batch) + 1).round().astype(int)
    return [items[a:b] for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _occlusion_drops(net, xw, gone, signal, label, tw, boxes, batch=3) -> list:
    """Drop in the window's target when each box's signal voxels are replaced by ``gone`` (the image
    blurred, as the deletion check deletes; empty voxels stay empty). ``boxes``: window-local slices."""
    if not boxes:
        return []
    drops = []
    with torch.no_grad():
        for chunk in chunks([None] + boxes, batch):  # the unoccluded window rides in the first batch
            xs = xw.repeat(len(chunk), *([1] * (xw.ndim - 1)))
            for j, sl in enumerate(chunk):
                if sl is not None:
                    xs[(j, slice(None)) + sl] = torch.where(signal[sl], gone[(0, slice(None)) + sl],
                                                            xw[(0, slice(None)) + sl])
            drops += list(_target(net(xs), label, tw.expand(len(chunk), *tw.shape[1:])).cpu().numpy())
    return [float(drops[0] - d) for d in drops[1:]]


def _first_order(net, xw, gone, label, tw, at=(0.25, 0.75)) -> np.ndarray:
    """Per voxel, gradient x (image - blurred), the gradient averaged at points ``at`` of the way from
    the blurred image to the image (integrated gradients from the blurred image, midpoint rule): the
    first-order share of each voxel in the drop that hiding it makes."""
    xg = torch.cat([gone + a * (xw - gone) for a in at]).requires_grad_(True)  # one batch: ~2x faster a point
    with torch.enable_grad():
        (g,) = torch.autograd.grad(_target(net(xg), label, tw.expand(len(at), *tw.shape[1:])).sum(), xg)
    return (g.mean(0, keepdim=True) * (xw - gone)).sum(1)[0].detach().cpu().numpy()


def _spread(centres, width, n) -> np.ndarray:
    """[n, len(centres)] weights of each block along one axis at each voxel: a Hann bump of twice the
    block's width around its centre, normalised to sum to one per voxel (with blocks on a stride of
    their width it is a partition of unity): the blocks' values blend into each other instead of
    stepping at their edges."""
    d = (np.arange(n)[:, None] + 0.5 - np.asarray(centres, float)[None, :]) / width
    w = np.where(np.abs(d) < 1, np.cos(np.pi * d / 2) ** 2, 0.0)
    return w / np.maximum(w.sum(1, keepdims=True), 1e-12)


def _occlusion_map(found: dict, block, shape, share: np.ndarray) -> np.ndarray:
    """The model-grid map from the blocks' measured drops. ``found``: block index -> (box, drop).
    ``share``: each voxel's first-order share in hiding (``_first_order``, smoothed, >= 0). Each
    block's drop is divided over its voxels in proportion to their shares: a block is as large as
    occlusion can afford, the share says where in it the drop came from. That density (drop per
    unit share) is blended between block centres (``_spread``), so the map has no block edges. In
    the blend a block counts by its share total, capped at the median block's: a block with almost
    no share has an unreliable density (blended alike, 8 px blocks on ultrasound lent their huge
    ratios to the background), while uncapped, the blocks with the most share outweighed their
    neighbours and the blend stepped where windows meet (white matter seam ratio 1.37)."""
    counts = [-(-n // c) for n, c in zip(shape, block)]
    dens, weight = np.zeros(counts), np.zeros(counts)
    for idx, (box, drop) in found.items():
        total = float(share[box].sum())
        dens[idx], weight[idx] = (drop / total, total) if total > 0 else (0.0, 0.0)
    cap = float(np.median(weight[weight > 0])) if (weight > 0).any() else 0.0
    weight = np.minimum(weight, cap)
    num = dens * weight
    for axis, (n, c) in enumerate(zip(shape, block)):
        centres = [min(i * c + c / 2, (i * c + n) / 2) for i in range(counts[axis])]
        w = _spread(centres, c, n)
        num, weight = (np.moveaxis(np.tensordot(w, np.moveaxis(a, axis, 0), axes=(1, 0)), 0, axis) for a in (num, weight))
    dens = np.divide(num, weight, out=np.zeros(shape), where=weight > 1e-6 * max(cap, 1e-30))
    return (dens * share).astype(np.float32)


def _occlusion_boxes(pl: "Plan", signal: np.ndarray, block) -> dict:
    """Blocks laid once over the whole input, each hidden in one window only: the one holding it
    whose centre is nearest (where its Gaussian weight, and so its say in the blend, is largest).
    Hiding a block in every window that holds it (up to 8 in 3D) cost as many passes for the same
    drop seen from other window positions. Returns window -> [(block index, global box, window-local
    box)] of the blocks with signal."""
    shape = signal.shape
    centres = np.array([[a + p / 2 for a, p in zip(w, pl.patch)] for w in pl.windows])
    owned: dict = {w: [] for w in pl.windows}
    for idx in np.ndindex(*[-(-n // c) for n, c in zip(shape, block)]):
        box = tuple(slice(i * c, min(i * c + c, n)) for i, c, n in zip(idx, block, shape))
        if not signal[box].any():
            continue  # nothing to hide: no pass
        holds = [i for i, w in enumerate(pl.windows)
                 if all(w[k] <= box[k].start and box[k].stop <= w[k] + pl.patch[k] for k in range(len(shape)))]
        if not holds:
            continue  # no window that sees the region holds it
        mid = np.array([(b.start + b.stop) / 2 for b in box])
        w = pl.windows[min(holds, key=lambda i: float(((centres[i] - mid) ** 2).sum()))]
        owned[w].append((idx, box, tuple(slice(b.start - a, b.stop - a) for b, a in zip(box, w))))
    return owned


def _ig_window(net, xw, label, tw, steps, internal_batch, fill):
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(lambda inp: _target(net(inp), label, tw.expand(inp.shape[0], *tw.shape[1:])))
    attr = ig.attribute(xw, baselines=torch.full_like(xw, fill), n_steps=steps, internal_batch_size=internal_batch)
    return attr.sum(1)[0].detach().numpy()


def reference_value(x: np.ndarray) -> float:
    """The model-input value of 'no signal' (air, background outside the body): the 0.5th
    percentile of the normalised input. Occlusion fills with it and integrated gradients start from
    it, so a voxel that already looks empty gets no attribution."""
    return float(np.percentile(x, 0.5))


BLUR_MM = 32.0  # what hiding a block leaves: the image blurred at this scale (occlusion and the deletion check)


def blurred(x: np.ndarray, spacing_mm, sigma_mm: float = BLUR_MM) -> np.ndarray:
    """What a hidden voxel becomes: the image blurred by ``sigma_mm`` (Gaussian; Fong & Vedaldi 2017).
    It keeps the local mean intensity, so the network sees nothing unlike its training, and removes
    the detail (edges, shape, texture) the block held. ``x``: [C, ...] on the model grid,
    ``spacing_mm`` per spatial axis of it."""
    from scipy import ndimage

    sigma = [sigma_mm / float(s) for s in spacing_mm]
    return np.stack([ndimage.gaussian_filter(c, sigma, mode="nearest") for c in x]).astype(np.float32)


def model_spacing(volume: Volume, card: ModelCard, ndim: int) -> list:
    """Voxel size in mm along the model grid's spatial axes (as ``plan`` lays them: (z,) y, x)."""
    return list(model_grid(volume, card).spacing)[::-1][-ndim:]


@dataclass
class Plan:
    """How a region is explained on the model grid: the padded input, every window of the sliding
    layout (as inference lays them out), the windows that touch the region, and per window the
    target weights roi * g_w / sum_w' g_w' - the share of each region voxel's blended logit that the
    window contributes, so the windows' targets sum to exactly the region's blended logit."""
    x: np.ndarray
    roi: np.ndarray
    shape: tuple
    patch: list
    windows: list
    norm: np.ndarray
    gauss: np.ndarray
    fill: float

    def slices(self, w):
        return tuple(slice(a, a + p) for a, p in zip(w, self.patch))

    def weights(self, w) -> np.ndarray:
        sl = self.slices(w)
        return self.roi[sl] * self.gauss / self.norm[sl]


def plan(volume: Volume, card: ModelCard, roi: np.ndarray) -> Plan:
    grid = model_grid(volume, card)
    x = to_model_axes(model_input(volume, card, grid), card)
    roi_m = resample(roi.astype(np.uint8), volume.geometry, grid, order=0)
    roi_m = roi_m[0] if card.spatial_dims == 2 else roi_m
    roi_m = to_model_axes(roi_m[None].astype(np.float32), card)[0]
    patch = list(card.patch_size)
    shape = x.shape[1:]
    pad = [max(p - s, 0) for s, p in zip(shape, patch)]
    if any(pad):
        widths = [(0, 0)] + [(0, p) for p in pad]
        x = np.pad(x, widths, mode="edge")
        roi_m = np.pad(roi_m, widths[1:])
    gauss = _gaussian(patch)
    every = _windows(x.shape[1:], patch, card.overlap)
    norm = np.zeros(x.shape[1:], np.float32)
    for w in every:
        norm[tuple(slice(a, a + p) for a, p in zip(w, patch))] += gauss
    wins = [w for w in every if roi_m[tuple(slice(a, a + p) for a, p in zip(w, patch))].any()]
    return Plan(x, roi_m, tuple(shape), patch, wins, norm, gauss, reference_value(x))


def explain(volume: Volume, card: ModelCard, label: int, method: str = "gradcam",
            roi: Optional[np.ndarray] = None, progress: ProgressFn = no_progress,
            cancel: Optional[CancelToken] = None, device: Optional[str] = None,
            net: Optional[torch.nn.Module] = None, layer: Optional[str] = None,
            occlusion_block: Optional[int] = None, ig_steps: int = 16, labels: Optional[np.ndarray] = None
            ) -> Explanation:
    """A saliency map for ``label`` on ``volume``'s grid. ``roi``: boolean [z, y, x] on the image grid
    (default: where the model predicts ``label``; pass ``labels`` to reuse a segmentation).

    Always computed in fp32, whatever precision the segmentation ran in: a map must not depend on the
    machine. The target is the region's summed logit as sliding-window inference blends it; each
    window explains its share of it and the windows' maps are added, so the map is the sum of the
    contributions to that one number (no averaging seams) and is zero wherever no window that sees
    the region reaches."""
    if method == "uncertainty":
        return uncertainty(volume, card, progress, cancel, device, net)
    if method not in METHODS:
        raise DelineateError(f"unknown method '{method}'; one of {', '.join(METHODS)}")
    if card.labels.get(label) is None:
        raise DelineateError(f"{card.id} has no label {label}")
    dev = devices.pick(device)
    net = net if net is not None else load_model(card, dev)
    net.eval()
    if roi is None:
        if labels is None:
            labels = segment(volume, card, net=net, device=str(dev)).labels.array
        roi = labels == label
    if not roi.any():
        raise DelineateError(f"the region of interest is empty: the model found no '{card.labels.get(label).name}'")
    pl = plan(volume, card, roi)
    patch, wins = pl.patch, pl.windows
    acc = np.zeros(pl.x.shape[1:], np.float32)
    xt = torch.from_numpy(np.ascontiguousarray(pl.x))[None].to(dev)
    # default 3D blocks: half the patch (64 mm on the brain model), each hidden in one window. Where in
    # a block its drop came from is the voxels' first-order share, so blocks only set how much each
    # region of the map weighs: on the test crop (v1.1.0) 64, 42 and 36 mm blocks gave the same masses and
    # deletion ratios (CSF 0.73 / 0.73 / 0.72 within 5 mm; -0.85 / -0.81 / -0.78 deletion), and
    # 64 mm took 4.6x one inference on the MNI152 against 13x for 42 mm. Before the share (each
    # block's drop spread evenly) 64 mm blocks could not rank the deletion check's 8 mm blocks.
    block = [occlusion_block or max(4, p // 8 if card.spatial_dims == 2 else p // 2) for p in patch]
    if method == "occlusion":
        gone_t = torch.from_numpy(blurred(pl.x, model_spacing(volume, card, pl.x.ndim - 1)))[None].to(dev)
        signal = np.abs(pl.x - pl.fill).max(0) > 1e-3
        signal_t = torch.from_numpy(signal).to(dev)
        owned = _occlusion_boxes(pl, signal, block)
        found = {}
    trainable = [p for p in net.parameters() if p.requires_grad]
    for p in trainable:  # no parameter gradients: explanations need input/feature gradients only
        p.requires_grad_(False)
    try:
        with torch.autocast(dev.type, enabled=False):  # fp32 even inside a caller's autocast
            a_ref = None
            if method == "gradcam":
                ref = torch.full_like(xt[(slice(None), slice(None)) + pl.slices(wins[0])], pl.fill)
                held = {}
                if layer is None:  # one forward pass of the reference picks the layer and records it
                    layer = pick_layer(net, ref, held)
                a_ref = held["a"] if "a" in held else _activation(net, ref, layer)
                reach = _local_reach(net, xt[(slice(None), slice(None)) + pl.slices(wins[0])], label, layer)
            # Grad-CAM in pairs of windows, as the runner batches them (each window's target depends on
            # its own input only, so one backward pass gives both gradients): on a CPU a batch of
            # two ran a 3D U-Net 2.5-3x faster per window than one at a time
            per_call = 2 if method == "gradcam" else 1
            for n in range(0, len(wins), per_call):
                check(cancel)
                group = wins[n:n + per_call]
                xw = torch.cat([xt[(slice(None), slice(None)) + pl.slices(w)] for w in group])
                tw = torch.from_numpy(np.stack([pl.weights(w) for w in group])).to(dev)
                if method == "gradcam":
                    maps = _gradcam_window(net, xw, label, tw, layer, a_ref)
                elif method == "occlusion":
                    sl = (slice(None), slice(None)) + pl.slices(group[0])
                    mine = owned[group[0]]
                    drops = _occlusion_drops(net, xw, gone_t[sl], signal_t[sl[2:]], label, tw, [b[2] for b in mine],
                                             batch=3 if card.spatial_dims == 3 else 8)
                    found.update({idx: (box, d) for (idx, box, _), d in zip(mine, drops)})
                    maps = [_first_order(net, xw, torch.where(signal_t[sl[2:]], gone_t[sl], xw), label, tw) * pl.gauss]
                else:
                    maps = [_ig_window(net, xw, label, tw, ig_steps, 4, pl.fill)]
                for w, m in zip(group, maps):
                    acc[pl.slices(w)] += m
                done = n + len(group)
                progress(done / len(wins), f"{method}: window {done}/{len(wins)}")
    finally:
        for p in trainable:
            p.requires_grad_(True)
    if method == "occlusion":
        # each window's first-order term is blended with inference's Gaussian weights (summed, the
        # terms stepped where a window's input starts: white matter seam ratio 1.37 with the 3.0.0
        # brain model, 1.13 blended); it alternates in sign from voxel to voxel (the strided layers'
        # checkerboard): summed over the grid's own resolution first, the noise cancels and what is
        # left lies on and beside the structure (CSF mass within 5 mm of its segment 0.57 -> 0.72)
        from scipy import ndimage

        share = np.maximum(ndimage.gaussian_filter(acc / pl.norm, 1.0), 0) * signal
        acc = _occlusion_map(found, block, signal.shape, share)
    if method == "gradcam":
        # the layer's features cannot place evidence finer than its stride: smoothing by half of it
        # removes the one-plane steps where a window's upsampled map starts or ends (seam ratio on
        # grey matter 1.56 -> 1.03) without blurring below the map's own resolution
        from scipy import ndimage

        stride = [p / s for p, s in zip(patch, a_ref.shape[2:])]
        # the region's receptive field through the tail: nothing beyond it can raise its score
        near = ndimage.distance_transform_cdt(pl.roi == 0, metric="chessboard") <= (reach + 1) * max(stride)
        acc = ndimage.gaussian_filter(acc * near, [max(st / 2, 0.0) for st in stride])
    # positive evidence for the label only: what raises its score in the region
    model_map = np.maximum(acc, 0)[tuple(slice(0, s) for s in pl.shape)]
    grid = model_grid(volume, card)
    acc = from_model_axes(model_map[None], card)[0]
    if card.spatial_dims == 2:
        acc = acc[None]
    values = resample(acc.astype(np.float32), grid, volume.geometry, order=1)
    top = float(np.percentile(values[values > 0], 99.5)) if np.any(values > 0) else 1.0
    values = np.clip(values / max(top, 1e-12), 0, 1).astype(np.float32)
    return Explanation(values, method, label, {"layer": layer, "windows": len(wins), "block": block,
                                               "window_starts": wins, "model_map": model_map,
                                               "reference": pl.fill})


# -- uncertainty ------------------------------------------------------------------------------------------
def _tta(x: np.ndarray, k: int, rng: np.random.Generator):
    """The k-th test-time augmentation of a model-grid input [C, ...] and how to undo it on outputs."""
    if k == 0:
        return x, lambda p: p
    if k in (1, 2):  # flip along the last (x) or second-last (y) spatial axis
        axis = x.ndim - k
        return np.ascontiguousarray(np.flip(x, axis=axis)), lambda p: np.flip(p, axis=axis)
    noisy = x + rng.normal(0, 0.05, x.shape).astype(np.float32)  # acquisition noise, in normalised units
    return noisy, lambda p: p


def uncertainty(volume: Volume, card: ModelCard, progress: ProgressFn = no_progress,
                cancel: Optional[CancelToken] = None, device: Optional[str] = None,
                net: Optional[torch.nn.Module] = None, passes: int = 4,
                first: Optional[np.ndarray] = None) -> Explanation:
    """Normalised predictive entropy over ``passes`` test-time augmentations (identity, x flip, y flip,
    noise), all on the model's grid; only the maps are resampled onto the image grid. ``first`` is
    accepted for API symmetry with the segmentation (the identity pass is recomputed on the model grid).
    Stochastic models (diffusion) are sampled ``passes`` times instead of augmented: the entropy of
    the samples' mean, with the mean and variance of the foreground probability over the samples."""
    from inference.runner import predict

    dev = devices.pick(device)
    net = net if net is not None else load_model(card, dev)
    grid = model_grid(volume, card)
    x = to_model_axes(model_input(volume, card, grid), card)
    rng = np.random.default_rng(0)
    stochastic = getattr(net, "stochastic", False)
    total, sum_ent, fg_sq = None, None, None
    for k in range(passes):
        check(cancel)
        if stochastic:
            net.reseed(k)
            xa, back = x, (lambda a: a)
        else:
            xa, back = _tta(x, k, rng)
        p = back(predict(net, xa, card, dev, lambda f, m="", k=k: progress((k + f) / passes, f"pass {k + 1}/{passes}"),
                         cancel, amp=False))  # fp32 like every map: it must not depend on the machine
        ent = -(p * np.log(np.clip(p, 1e-6, 1))).sum(0)
        total = p if total is None else total + p
        sum_ent = ent if sum_ent is None else sum_ent + ent
        fore = 1.0 - p[0]
        fg_sq = fore * fore if fg_sq is None else fg_sq + fore * fore
    if stochastic:
        net.reseed(0)
    mean = total / passes
    n = mean.shape[0]
    h = np.clip(-(mean * np.log(np.clip(mean, 1e-6, 1))).sum(0) / math.log(n), 0, 1)
    mi = np.clip(h - (sum_ent / passes) / math.log(n), 0, 1)
    lab = np.argmax(mean, 0).astype(np.uint8)

    def to_image(a, order):
        a = from_model_axes(a[None], card)[0]
        a = a[None] if card.spatial_dims == 2 else a
        return resample(a, grid, volume.geometry, order=order)

    h_img, mi_img, lab_img = to_image(h.astype(np.float32), 1), to_image(mi.astype(np.float32), 1), to_image(lab, 0)
    per_segment = {int(v): float(h_img[lab_img == v].mean()) for v in np.unique(lab_img) if v > 0}
    fg = lab_img > 0
    extra = {"mutual_information": mi_img.astype(np.float32), "per_segment": per_segment,
             "case": float(h_img[fg].mean()) if fg.any() else 0.0, "passes": passes, "labels": lab_img,
             "method": "samples" if stochastic else "test-time augmentation"}
    if stochastic:
        fg_mean = 1.0 - mean[0]
        extra["sample_mean"] = to_image(fg_mean.astype(np.float32), 1)
        extra["sample_variance"] = to_image(np.clip(fg_sq / passes - fg_mean ** 2, 0, None).astype(np.float32), 1)
    progress(1.0, "done")
    return Explanation(np.clip(h_img, 0, 1).astype(np.float32), "uncertainty", 0, extra)


def calibration(probabilities: np.ndarray, truth: np.ndarray, bins: int = 10) -> dict:
    """Reliability diagram and expected calibration error of the top-class confidence."""
    conf = probabilities.max(0).reshape(-1).astype(np.float64)
    correct = (np.argmax(probabilities, 0) == truth).reshape(-1)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    counts = np.bincount(idx, minlength=bins)
    acc = np.bincount(idx, weights=correct, minlength=bins) / np.maximum(counts, 1)
    mean_conf = np.bincount(idx, weights=conf, minlength=bins) / np.maximum(counts, 1)
    ece = float(np.sum(counts / max(conf.size, 1) * np.abs(acc - mean_conf)))
    return {"ece": ece, "bin_edges": edges.tolist(), "accuracy": acc.tolist(), "confidence": mean_conf.tolist(),
            "counts": counts.tolist()}


def uncertain_regions(values: np.ndarray, threshold: float = 0.5, min_voxels: int = 5,
                      spacing_xyz=(1.0, 1.0, 1.0), merge_mm: Optional[float] = None,
                      keep_fraction: float = 0.02, max_mm: Optional[float] = 40.0) -> list[dict]:
    """Regions above ``threshold`` for a reviewer to walk, most important first.

    Pieces closer than ``merge_mm`` (default: two voxels along the coarsest axis) are one region:
    a ragged rim of doubt is one place to look, not dozens. A region's score is its volume (mL) x
    its mean uncertainty; regions under ``min_voxels`` or scoring under ``keep_fraction`` of the
    top one are dropped. A region longer than ``max_mm`` along an axis is cut into tiles of that size
    (a rim of doubt along a whole cortex merged into one 49 mL "region" whose box was the brain: no
    place to look). Each has its rank, volume, mean, score, centre and bounding box (index
    z, y, x; the box is inclusive-exclusive) so a viewer can outline and zoom to it."""
    from scipy import ndimage

    above = values >= threshold
    if not above.any():
        return []
    spacing_zyx = np.asarray(spacing_xyz, float)[::-1]
    merge_mm = 2 * float(spacing_zyx.max()) if merge_mm is None else merge_mm
    reach = np.maximum(np.round(merge_mm / 2 / spacing_zyx).astype(int), 0)  # half the gap from each side
    joined = ndimage.binary_dilation(above, np.ones(tuple(2 * reach + 1), bool)) if reach.any() else above
    comp, n = ndimage.label(joined)
    comp = np.where(above, comp, 0)  # statistics over the doubtful voxels only
    if max_mm and n:
        # tiles laid from each long region's own first voxel, so a region that fits stays whole
        boxes = ndimage.find_objects(comp, n)
        where = np.nonzero(above)
        c = comp[where]
        tile = np.zeros(c.size, np.int64)
        for axis, mm in enumerate(spacing_zyx):
            per = max(int(max_mm // mm), 1)
            start = np.array([0] + [b[axis].start if b is not None else 0 for b in boxes])
            length = np.array([0] + [b[axis].stop - b[axis].start if b is not None else 0 for b in boxes])
            step = np.where(length > per, per, np.iinfo(np.int32).max)  # only regions longer than a tile
            tile = tile * (max(comp.shape) + 1) + (where[axis] - start[c]) // step[c]
        key = np.zeros(comp.shape, np.int64)
        key[where] = c.astype(np.int64) * (int(tile.max()) + 1) + tile
        _, pieces = np.unique(key[above], return_inverse=True)
        comp = np.zeros(comp.shape, np.int64)
        comp[above] = pieces.reshape(-1) + 1
        n = int(comp.max())
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(above, comp, idx)
    means = ndimage.mean(values, comp, idx)
    centres = ndimage.center_of_mass(values, comp, idx)
    boxes = ndimage.find_objects(comp, n)
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    regions = [{"size": int(sz), "volume_ml": float(sz * voxel_ml), "mean": float(m), "score": float(sz * voxel_ml * m),
                "centre_zyx": [float(c) for c in ctr], "bbox_zyx": [[b.start, b.stop] for b in box]}
               for sz, m, ctr, box in zip(sizes, means, centres, boxes) if box is not None and sz >= min_voxels]
    regions.sort(key=lambda r: -r["score"])
    if regions:
        top = regions[0]["score"]
        regions = [r for r in regions if r["score"] >= keep_fraction * top]
    for rank, r in enumerate(regions, 1):
        r["rank"] = rank
    return regions
