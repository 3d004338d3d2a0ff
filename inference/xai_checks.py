"""Measures that can prove a saliency map wrong: where its mass lies, whether window borders show,
and whether it ranks the voxels the model really depends on (deletion and insertion curves).

Each takes an ``Explanation`` from ``inference.xai.explain`` and returns a plain number, so the
same verdicts are printed by ``bench/xai.py`` on the MNI152 sample and asserted by the tests.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from core.volume import Volume
from inference.card import ModelCard
from inference.xai import BLUR_MM, Explanation, blurred, chunks, model_spacing, plan

DELETION_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
DELETION_BLUR_MM = BLUR_MM


def brain_mask(volume: Volume) -> np.ndarray:
    """Where a skull-stripped template (the MNI152 sample) has signal, holes filled."""
    from scipy import ndimage

    a = volume.array
    return ndimage.binary_fill_holes(a > float(a.min()))


def mass_inside(values: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's total mass (sum of its values) inside ``mask``."""
    total = float(values.sum())
    return float(values[mask].sum()) / total if total > 0 else 0.0


def mass_near(values: np.ndarray, region: np.ndarray, spacing_xyz: Sequence[float], mm: float = 5.0) -> float:
    """Share of the map's mass within ``mm`` millimetres of ``region`` (anisotropic spacing honoured)."""
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(~region, sampling=list(spacing_xyz)[::-1])
    return mass_inside(values, dist <= mm)


def seam_ratio(explanation: Explanation, card: ModelCard, floor: float = 0.05, near: int = 3) -> float:
    """Mean step of the map (on the model grid, where the windows are laid) across window borders
    over the mean step across the planes parallel to them 1..``near`` voxels either side, at the
    same positions: 1 means a border looks like any other place nearby (anatomy included), a seam
    shows as > 1. Steps are counted where the map shows something (either side above ``floor`` x
    its peak), so empty background does not dilute the ratio."""
    m = explanation.extra["model_map"]
    starts = explanation.extra["window_starts"]
    patch = list(card.patch_size)
    peak = float(m.max())
    if peak <= 0:
        return 1.0
    border, beside = [], []
    for axis in range(m.ndim):
        a = np.moveaxis(m, axis, 0)
        n = a.shape[0]
        step = np.abs(np.diff(a, axis=0))  # step i lies between planes i and i + 1
        shown = np.maximum(a[1:], a[:-1]) > floor * peak
        cuts = sorted({s[axis] for s in starts} | {s[axis] + patch[axis] for s in starts})
        for c in cuts:
            if not near < c < n - near:
                continue
            at = shown[c - 1]
            border.append(step[c - 1][at])
            for d in range(1, near + 1):
                for i in (c - 1 - d, c - 1 + d):
                    beside.append(step[i][at & shown[i]])
    if not border:
        return 1.0
    b, o = np.concatenate(border), np.concatenate(beside)
    if not b.size or not o.size or b.mean() == 0:
        return 1.0
    return float(b.mean() / o.mean()) if o.mean() > 0 else float("inf")  # flat beside, a step at the border


def _scores(net, pl, images: Sequence[np.ndarray], label: int, device, batch: int = 3) -> list:
    """Mean probability of ``label`` over the region for each image, from logits blended as
    inference blends them (every window covering a region voxel touches the region, so
    ``pl.windows`` suffice there). Windows of all images go through the network in batches: on a
    CPU a batch of 2-8 3D windows ran about 3x faster per window than one at a time."""
    jobs = [(i, w) for i in range(len(images)) for w in pl.windows]
    accs: list = [None] * len(images)
    with torch.no_grad(), torch.autocast(torch.device(device).type, enabled=False):
        for chunk in chunks(jobs, batch):
            xb = torch.from_numpy(np.stack([images[i][(slice(None),) + pl.slices(w)] for i, w in chunk])).to(device)
            out = net(xb)
            out = (out[0] if isinstance(out, (list, tuple)) else out).float().cpu().numpy()
            for (i, w), o in zip(chunk, out):
                if accs[i] is None:
                    accs[i] = np.zeros((o.shape[0],) + images[i].shape[1:], np.float32)
                accs[i][(slice(None),) + pl.slices(w)] += o * pl.gauss
    inside = pl.roi > 0
    result = []
    for acc in accs:
        logits = acc[:, inside] / pl.norm[inside]
        p = np.exp(logits - logits.max(0))
        result.append(float((p[label] / p.sum(0)).mean()))
    return result


def deleted_image(x: np.ndarray, spacing_mm: Sequence[float], sigma_mm: float = DELETION_BLUR_MM) -> np.ndarray:
    """What a deleted voxel becomes: ``inference.xai.blurred`` (occlusion hides blocks the same way)."""
    return blurred(x, spacing_mm, sigma_mm)


def deletion_curves(volume: Volume, card: ModelCard, net: torch.nn.Module, explanation: Optional[Explanation],
                    roi: np.ndarray, fractions: Sequence[float] = DELETION_FRACTIONS, seed: int = 0,
                    device: str = "cpu", unit: int = 4, order: Optional[np.ndarray] = None,
                    sigma_mm: float = DELETION_BLUR_MM, randoms: int = 1, label: Optional[int] = None,
                    insert: bool = False) -> dict:
    """Delete (replace by ``deleted_image``) a growing share of the voxels that carry signal, most
    salient first and in random order (``randoms`` orders, curves averaged), and follow the label's
    mean probability over the region (as inference blends it; Petsiuk et al. 2018). A faithful map
    drops it faster than chance: ``ratio`` = area of the salient curve above the all-deleted level
    / that of the random one (lower is better; below 0 the salient curve dips under that level).
    ``order``: a model-grid map to rank by instead of the explanation's (``region_first``: the
    control, what the measure can show at all for this region).

    Why above the all-deleted level: both orders end at the same image, and with the blurred image
    much of the probability survives deleting everything (grey matter 0.80 -> 0.63 at an 8 mm blur
    on the test crop): raw areas were dominated by that floor, which no order changes, and not even
    deleting the segment itself first beat random deletion (0.97). Why 32 mm: it is the smallest
    blur at which that control beats random deletion for every tissue (white matter 1.13 at 8 mm,
    1.09 at 16 mm, 0.68 at 32 mm). Deleting to black (the no-signal value), before, measured the
    network's reaction to black holes: black is CSF-like on T1.

    ``insert``: the insertion curve instead (``insertion_curves``): start from everything deleted and
    put the blocks back, most salient first; the same blocks, orders and areas above the
    all-deleted level, but here a faithful map's curve rises faster (``ratio`` > 1 is better)."""
    pl = plan(volume, card, roi)
    net.eval()
    covered = np.zeros(pl.x.shape[1:], bool)
    for w in pl.windows:
        covered[pl.slices(w)] = True
    sal = np.zeros(pl.x.shape[1:], np.float32)
    m = explanation.extra["model_map"] if order is None else order
    sal[tuple(slice(0, s) for s in m.shape)] = m
    gone_to = deleted_image(pl.x, model_spacing(volume, card, pl.x.ndim - 1), sigma_mm).reshape(pl.x.shape[0], -1)
    # delete in blocks of ``unit`` model voxels, in either order: scattered single voxels are noise the
    # network never saw, and would test its robustness to noise rather than the map
    signal = covered & (np.abs(pl.x - pl.fill).max(0) > 1e-3)  # deleting an empty voxel deletes nothing
    blocks = np.zeros(signal.shape, np.int64)
    for axis, n in enumerate(signal.shape):
        shape = [1] * signal.ndim
        shape[axis] = n
        blocks = blocks * (-(-n // unit)) + (np.arange(n) // unit).reshape(shape)
    ids, inverse = np.unique(blocks[signal], return_inverse=True)
    block_sal = np.bincount(inverse, weights=sal[signal]) / np.bincount(inverse)
    rng = np.random.default_rng(seed)
    jitter = rng.random(ids.size)
    orders = {"salient": [np.lexsort((jitter, -block_sal))],
              "random": [rng.permutation(ids.size) for _ in range(randoms)]}
    where = np.flatnonzero(signal)
    inner = [f for f in fractions if 0 < f < 1]
    images, keys = [pl.x, pl.x.copy()], ["none", "all"]  # nothing and everything deleted: either order
    images[1].reshape(pl.x.shape[0], -1)[:, where] = gone_to[:, where]
    # deletion: the image with the chosen blocks blurred away; insertion: everything blurred away but them
    start, put = (images[1], pl.x.reshape(pl.x.shape[0], -1)) if insert else (pl.x, gone_to)
    for name, ranked_list in orders.items():
        for r, ranked in enumerate(ranked_list):
            for f in inner:
                x = start.copy()
                chosen = np.zeros(ids.size, bool)
                chosen[ranked[:int(round(f * ids.size))]] = True
                idx = where[chosen[inverse]]
                x.reshape(x.shape[0], -1)[:, idx] = put[:, idx]
                images.append(x)
                keys.append((name, r, f))
    score = dict(zip(keys, _scores(net, pl, images, explanation.label if label is None else label, device)))
    curves = {}
    for name, ranked_list in orders.items():
        first, last = ("all", "none") if insert else ("none", "all")
        curves[name] = [score[first] if f == 0 else score[last] if f == 1 else
                        float(np.mean([score[(name, r, f)] for r in range(len(ranked_list))])) for f in fractions]
    floor = score["all"]
    area = {k: float(np.trapezoid(np.asarray(v) - floor, fractions)) for k, v in curves.items()}
    return {"fractions": list(fractions), **{f"{k}_curve": v for k, v in curves.items()},
            "salient_area": area["salient"], "random_area": area["random"], "all_deleted": floor,
            "ratio": area["salient"] / area["random"] if area["random"] > 0 else float("inf"),
            "blocks": int(ids.size)}


def insertion_curves(volume: Volume, card: ModelCard, net: torch.nn.Module, explanation: Optional[Explanation],
                     roi: np.ndarray, fractions: Sequence[float] = DELETION_FRACTIONS, **kw) -> dict:
    """Insertion curve (Petsiuk et al. 2018), the deletion check's mirror: from the image with every
    signal block blurred away, put the blocks back most salient first and in random order, and
    follow the label's mean probability in the region. ``ratio`` = area of the salient curve above
    the all-deleted level / that of the random one: above 1 the map finds what restores the label
    faster than chance. It can judge where deletion cannot: deletion asks what removing a block
    costs once the rest is there, insertion what a block brings alone (on T1 any blur reads as grey
    matter, so removing its evidence leaves grey-matter-like voxels behind)."""
    return deletion_curves(volume, card, net, explanation, roi, fractions, insert=True, **kw)


def region_first(volume: Volume, card: ModelCard, roi: np.ndarray) -> np.ndarray:
    """The explained region itself on the model grid, as ``deletion_curves(order=...)``: deleting
    the segment's own voxels first is the reference any map is measured beside."""
    pl = plan(volume, card, roi)
    return pl.roi[tuple(slice(0, s) for s in pl.shape)].astype(np.float32)


def verdicts(volume: Volume, card: ModelCard, net: torch.nn.Module, explanation: Explanation,
             roi: np.ndarray, inside: Optional[np.ndarray] = None, device: str = "cpu",
             fractions: Sequence[float] = DELETION_FRACTIONS, randoms: int = 3) -> dict:
    """Every measure at once: mass inside ``inside`` (default: the image's signal), mass within 5 mm
    of the region, seam ratio, and the deletion and insertion ratios (``randoms`` random orders averaged)."""
    inside = brain_mask(volume) if inside is None else inside
    v = explanation.values
    curves = {kind: fn(volume, card, net, explanation, roi, fractions, device=device, randoms=randoms)["ratio"]
              for kind, fn in (("deletion", deletion_curves), ("insertion", insertion_curves))}
    return {"inside": mass_inside(v, inside), "near_5mm": mass_near(v, roi, volume.geometry.spacing),
            "seam": seam_ratio(explanation, card), **curves}
