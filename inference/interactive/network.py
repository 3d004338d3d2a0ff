"""The "network" interactive engine: Delineate's own class-agnostic promptable network
(net_model.py, trained on generated scenes by train_prompts.py).

Each prompt is answered in a region of interest (ROI) around the prompts at the image's own
resolution (around the newest prompt when there is a previous mask: older prompts are in it
already). The ROI is resampled to isotropic voxels, at most net_model.NET_SIZE a side, the
network runs in fp32, and its answer is resampled back onto the image grid inside the ROI only;
voxels outside the ROI keep the previous mask. When the object touches a side of the ROI that is
not the image's edge, the ROI grows on that side and the network runs again (as nnInteractive
does), up to MAX_ROI_MM / MAX_GROWTHS.

Oblique and anisotropic images need nothing special: the ROI is a block of the image's own index
grid, and prompts are placed on it through the image's geometry (prompts.rasterise / to_index).
A 2D image (one slice) becomes a slab of net_model.SLAB repeated slices, as in training.
"""
from __future__ import annotations

import importlib.util
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from core.errors import DelineateError
from core.progress import check
from core.volume import Volume, luminance
from inference.interactive import net_model
from inference.interactive.engine import EngineInfo, register
from inference.interactive.prompts import Point, Prompts, rasterise, to_index

#: the first ROI's side, in voxels of the image's finest spacing
START_VOXELS = 64
#: how many times the ROI may grow, and the largest side it may reach (in finest-spacing voxels)
MAX_GROWTHS = 3
MAX_ROI_VOXELS = 4 * net_model.NET_SIZE
#: margin kept around the prompts (and the ROI's growth step, as a fraction of its side)
MARGIN_VOXELS = 8
GROWTH = 0.5
#: voxels (of the network's ROI grid) around a negative prompt within which a piece counts as refused
NEGATIVE_REACH = 3


def available() -> Optional[str]:
    for mod in ("torch", "monai", "safetensors"):
        if importlib.util.find_spec(mod) is None:
            return f"the promptable network needs {mod}, which is not installed"
    try:
        folder = net_model.shipped_folder()
    except FileNotFoundError as exc:
        return str(exc)
    if not any(folder.glob("*.safetensors")):
        return f"no weights in {folder}"
    return None


class NetworkEngine:
    name = "network"

    def __init__(self, device=None, folder=None) -> None:
        self._device = device
        self._folder = folder
        self._net = None
        self.card: dict = {}

    def network(self):
        if self._net is None:
            from inference.device import pick

            self._net, self.card = net_model.load(self._folder)
            self.device = pick(self._device) if self._device not in (None, "auto") else pick("cpu")
            self._net.to(self.device)
        return self._net

    def open(self, volume: Volume) -> "NetworkState":
        self.network()
        return NetworkState(self, volume)


class NetworkState:
    def __init__(self, engine: NetworkEngine, volume: Volume) -> None:
        self.engine = engine
        self.geometry = volume.geometry
        a = volume.array
        if volume.is_color:  # luminance: the network sees one grey channel
            a = luminance(a, np.float32)
        self.image = a
        self.modality = volume.modality or "OT"
        self.flat = volume.geometry.size[2] == 1
        self.spacing = np.asarray(volume.geometry.spacing, np.float64)[::-1]  # (z, y, x) mm
        self.last_rois: list[tuple[slice, slice, slice]] = []  # ROIs of the last predict (tests, benchmark)

    # -- the public call ---------------------------------------------------------------------------
    def predict(self, prompts: Prompts, previous: Optional[np.ndarray] = None, cancel=None) -> np.ndarray:
        shape = self.geometry.shape_zyx
        if previous is not None and np.shape(previous) != shape:
            raise DelineateError(f"previous mask has shape {np.shape(previous)}, the image {shape} (z, y, x)")
        had_previous = previous is not None and bool(np.any(previous))
        placed = _Placed(prompts, self.geometry)
        # with a previous mask the older prompts are in it already: the ROI follows the newest one,
        # though every prompt inside the ROI is shown to the network (as in training)
        core = placed.box(last_only=had_previous)
        out = np.zeros(shape, bool) if previous is None else np.asarray(previous, bool).copy()
        if core is None:
            return out
        roi = self._first_roi(core)
        self.last_rois = []
        for attempt in range(MAX_GROWTHS + 1):
            check(cancel)
            self.last_rois.append(roi)
            mask = self._run(roi, placed, out if had_previous else None)
            grown = self._grow(roi, mask) if attempt < MAX_GROWTHS else None
            if grown is None:
                break
            roi = grown
        out[roi] = mask
        return out

    # -- the region of interest --------------------------------------------------------------------
    def _first_roi(self, core) -> tuple[slice, ...]:
        fine = float(self.spacing.min())
        side = START_VOXELS * fine  # mm
        out = []
        for ax, s in enumerate(core):
            n = self.geometry.shape_zyx[ax]
            want = max(side / self.spacing[ax], (s.stop - s.start) + 2 * MARGIN_VOXELS * fine / self.spacing[ax])
            want = int(min(n, max(1, round(want))))
            centre = (s.start + s.stop) / 2
            lo = int(np.clip(round(centre - want / 2), 0, n - want))
            out.append(slice(lo, lo + want))
        return tuple(out)

    def _grow(self, roi, mask: np.ndarray):
        """A larger ROI when the object touches a side of ``roi`` inside the image; else None."""
        fine = float(self.spacing.min())
        shape = self.geometry.shape_zyx
        new, changed = [], False
        for ax, s in enumerate(roi):
            n = shape[ax]
            side = s.stop - s.start
            limit = max(1, int(MAX_ROI_VOXELS * fine / self.spacing[ax]))
            step = max(1, int(round(GROWTH * side)))
            lo, hi = s.start, s.stop
            if mask.shape[ax] > 1 and side < limit:
                first = np.take(mask, 0, axis=ax).any()
                last = np.take(mask, mask.shape[ax] - 1, axis=ax).any()
                if first and lo > 0:
                    lo = max(0, lo - step)
                if last and hi < n:
                    hi = min(n, hi + step)
                if hi - lo > limit:  # keep within the limit, centred on where it grew
                    cut = hi - lo - limit
                    lo, hi = (lo + cut, hi) if s.start == lo else (lo, hi - cut)
            changed |= (lo, hi) != (s.start, s.stop)
            new.append(slice(lo, hi))
        return tuple(new) if changed else None

    # -- one network run ---------------------------------------------------------------------------
    def _grid(self, roi) -> tuple[list[int], np.ndarray]:
        """The network's grid for ``roi``: isotropic voxels, at most NET_SIZE a side, each side a
        multiple of net_model.MULTIPLE; and the ROI voxels per network voxel along each axis."""
        n = np.array([s.stop - s.start for s in roi], float)
        mm = n * self.spacing
        if self.flat:
            mm[0] = 0.0
        spacing = max(float(self.spacing[1:].min() if self.flat else self.spacing.min()),
                      float(mm.max()) / net_model.NET_SIZE)
        m = net_model.MULTIPLE
        grid = [net_model.SLAB if self.flat and ax == 0 else
                int(min(net_model.NET_SIZE, max(m, m * round(mm[ax] / spacing / m)))) for ax in range(3)]
        return grid, n / np.array(grid, float)

    def _run(self, roi, placed: "_Placed", previous: Optional[np.ndarray]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        net = self.engine.network()
        grid, per = self._grid(roi)
        crop = np.asarray(self.image[roi], np.float32)
        img = net_model.normalise(crop, self.modality)
        sigma = [0.0 if self.flat and ax == 0 else max(0.0, 0.45 * (per[ax] - 1)) for ax in range(3)]
        if max(sigma) > 0.05:  # anti-aliasing before a coarser grid
            img = ndi.gaussian_filter(img, sigma, mode="nearest")
        prev = np.zeros(crop.shape, np.float32) if previous is None else previous[roi].astype(np.float32)
        zero = np.zeros(crop.shape, np.float32)
        r = placed.others
        chans = [img, prev] + ([r.positive[roi], r.negative[roi], r.box_mask[roi]] if r is not None else [zero] * 3)
        x = torch.from_numpy(np.stack([np.asarray(c, np.float32) for c in chans]))[None]
        size = [1 if self.flat else grid[0], grid[1], grid[2]]
        x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
        x[:, 1] = (x[:, 1] >= 0.5).float()
        x[:, 2:] = (x[:, 2:] >= 0.25).float()
        pos, neg = x[0, 2].numpy().astype(bool), x[0, 3].numpy().astype(bool)
        lo = np.array([s.start for s in roi], float)
        pos_roi = np.zeros(crop.shape, bool) if r is None else r.positive[roi].copy()
        neg_roi = np.zeros(crop.shape, bool) if r is None else r.negative[roi].copy()
        for zyx, positive in placed.points:  # clicks drawn on the network's grid: a visible ball however coarse
            c = (zyx - lo + 0.5) / per - 0.5
            if self.flat:
                c[0] = 0
            net_model.ball(pos if positive else neg, c, 1.0)
            net_model.ball(pos_roi if positive else neg_roi, zyx - lo, 0.0)
        x[0, 2], x[0, 3] = torch.from_numpy(pos.astype(np.float32)), torch.from_numpy(neg.astype(np.float32))
        if self.flat:
            x = x.repeat(1, 1, net_model.SLAB, 1, 1)
        with torch.inference_mode():
            logits = net(x.to(self.engine.device, torch.float32)).float().cpu()
        if self.flat:
            mid = net_model.SLAB // 2
            logits = logits[:, :, mid:mid + 1]
        logits = F.interpolate(logits, size=list(crop.shape), mode="trilinear", align_corners=False)
        mask = logits[0, 0].numpy() > 0
        mask = self._keep_prompted(mask, pos_roi, prev > 0.5)
        return self._drop_refused(mask, pos_roi, neg_roi, self._inner_faces(roi))

    @staticmethod
    def _keep_prompted(mask: np.ndarray, pos_roi: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """Only the pieces the user pointed at (or that continue the previous mask): a network's
        stray blobs far from every prompt are not the object."""
        lab, n = ndi.label(mask)
        if n <= 1:
            return mask
        keep = np.unique(lab[(pos_roi | previous) & mask])
        keep = keep[keep > 0]
        return np.isin(lab, keep) if keep.size else mask

    def _inner_faces(self, roi) -> list[tuple[int, int]]:
        """(axis, 0 or -1) for each face of ``roi`` that lies inside the image (not on its edge)."""
        shape = self.geometry.shape_zyx
        out = []
        for ax, sl in enumerate(roi):
            if sl.start > 0:
                out.append((ax, 0))
            if sl.stop < shape[ax]:
                out.append((ax, -1))
        return out

    @staticmethod
    def _drop_refused(mask, pos_roi, neg_roi, faces) -> np.ndarray:
        """A piece the user marked negative, with no positive prompt in it and lying wholly inside the
        ROI, is not the object, whatever the network kept of it (a negative click removes a false
        region; v1.0.0 of the network alone often leaves it when it was in the previous mask). "In it"
        counts within NEGATIVE_REACH voxels: the network often punches a hole around the click and keeps
        the rest of the piece as a shell."""
        if not neg_roi.any():
            return mask
        lab, n = ndi.label(mask)
        if n == 0:
            return mask
        near = ndi.binary_dilation(neg_roi, iterations=NEGATIVE_REACH)
        refused = set(np.unique(lab[near & mask])) - {0} - set(np.unique(lab[pos_roi & mask]))
        for ax, end in faces:  # a piece leaving the ROI may be the object itself, seen in part
            refused -= set(np.unique(np.take(lab, end, axis=ax)))
        return mask & ~np.isin(lab, list(refused)) if refused else mask


class _Placed:
    """The prompts on the image's grid: clicks as continuous (z, y, x) indices (drawn later on the
    network's grid), everything else rasterised once; PromptError for any outside the image."""

    def __init__(self, prompts: Prompts, geometry) -> None:
        self.geometry = geometry
        self.items = prompts.items
        self.points = [(to_index(geometry, p.lps, f"point {n + 1}")[::-1], p.positive)
                       for n, p in enumerate(prompts.items) if isinstance(p, Point)]
        others = tuple(p for p in prompts.items if not isinstance(p, Point))
        self.others = rasterise(Prompts(others), geometry) if others else None

    def box(self, last_only: bool):
        """zyx slices around every prompt (or the newest one only); None when there are none."""
        if not self.items:
            return None
        if last_only and not isinstance(self.items[-1], Point):
            return rasterise(Prompts(self.items[-1:]), self.geometry).box
        shape = self.geometry.shape_zyx
        pts = [np.clip(np.rint(z), 0, np.array(shape) - 1).astype(int) for z, _ in
               (self.points[-1:] if last_only else self.points)]
        lo = np.min(pts, 0) if pts else np.array(shape)
        hi = np.max(pts, 0) + 1 if pts else np.zeros(3, int)
        if not last_only and self.others is not None and self.others.box is not None:
            lo = np.minimum(lo, [s.start for s in self.others.box])
            hi = np.maximum(hi, [s.stop for s in self.others.box])
        return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi)) if np.all(hi > lo) else None


# auto=False: the shipped network (v1.1.0: 72 CPU-minutes, then 8 GPU-minutes) is far weaker than the
# classical engine on the benchmark (README), so "auto" keeps choosing the classical engine; name "network" to use it
register(EngineInfo("network", "Promptable network (Delineate, experimental)", available,
                    lambda device=None: NetworkEngine(device), auto=False))
