"""Training of the promptable network on generated scenes (synth_objects) with simulated
iterative prompting, as the CVPR 2025 interactive challenge prompts: a first click (or a box, or a
lasso), then clicks at the most interior point of the largest error region, the network's own
prediction fed back as the previous mask. Loss: Dice + BCE.

Runs on the CPU in fp32 (never bf16 autocast: results must not depend on the CPU's bf16 units).
Long runs checkpoint every few minutes and resume from the checkpoint when started again.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy import ndimage as ndi

from inference.interactive import net_model, synth_objects


@dataclass
class TrainConfig:
    patch: tuple[int, int, int] = (48, 48, 48)   # 3D scenes (network grid, isotropic voxels)
    plane: tuple[int, int] = (64, 64)            # 2D scenes, made into slabs of net_model.SLAB
    slab: int = net_model.SLAB
    p2d: float = 0.25                            # share of 2D batches
    batch: int = 1                               # 3D scenes per step
    batch2d: int = 4                             # 2D scenes per step
    steps: int = 100_000                         # whichever comes first: steps or minutes
    minutes: float = 60.0
    lr: float = 2e-3
    lr_min: float = 1e-4
    seed: int = 0
    threads: int = 1
    arch: dict = field(default_factory=lambda: dict(net_model.ARCH))
    p_perturbed: float = 0.2                     # batches whose previous mask is a perturbed target
    max_iterations: int = 3                      # corrective rounds the network answers itself
    first_share: float = 0.5                     # batches that are first prompts alone (no rounds)
    checkpoint_every_s: float = 300.0
    repeat_batch: bool = False                   # tests: one fixed batch (the loss must fall)
    device: str = "cpu"                          # "cuda": bf16 autocast there (a GPU run, not a CPU's)
    workers: int = 0                             # processes drawing scenes and first prompts
    init: Optional[str] = None                   # start from these weights (.safetensors): fine-tuning


#: a tiny network on small scenes: tests and smoke runs (seconds on one thread)
TINY = {"patch": (16, 16, 16), "plane": (32, 32), "batch2d": 2, "max_iterations": 1,
        "arch": {"channels": [4, 8], "strides": [2], "num_res_units": 0}}


# -- simulated prompts -------------------------------------------------------------------------------
def interior_point(region: np.ndarray, rng=None, jitter: float = 0.0) -> tuple[int, int, int]:
    """The most interior voxel of ``region`` (largest distance to its outside); with ``jitter``
    > 0, sometimes any voxel at least half as deep (users do not always hit the centre)."""
    idx = np.argwhere(region)
    lo, hi = idx.min(0), idx.max(0) + 1
    crop = region[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    if region.shape[0] == 1:  # 2D: depth within the slice only
        d = ndi.distance_transform_edt(np.pad(crop[0], 1))[None, 1:-1, 1:-1]
    else:
        d = ndi.distance_transform_edt(np.pad(crop, 1))[1:-1, 1:-1, 1:-1]
    if rng is not None and jitter > 0 and rng.random() < jitter:
        cand = np.argwhere(d >= 0.5 * d.max())
        at = cand[int(rng.integers(len(cand)))]
    else:
        at = np.unravel_index(int(np.argmax(d)), d.shape)
    return tuple(int(v + o) for v, o in zip(at, lo))


def largest_error(pred: np.ndarray, target: np.ndarray) -> tuple[Optional[np.ndarray], bool]:
    """The largest connected error region and whether it is missed object (True: a positive click
    fixes it) or false object (False: a negative click); (None, True) when there is no error."""
    best, best_n, positive = None, 0, True
    for err, pos in ((target & ~pred, True), (pred & ~target, False)):
        lab, n = ndi.label(err)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        i = int(np.argmax(sizes))
        if sizes[i] > best_n:
            best, best_n, positive = lab == i + 1, int(sizes[i]), pos
    return best, positive


def _slice_prompt(target: np.ndarray, rng, lasso: bool) -> np.ndarray:
    """A box (or lasso) drawn on one slice across the object: its 2D bounding box (or its outline
    filled) on a slice where the object is at least half its largest cross-section."""
    axes = [0] if target.shape[0] == 1 else [0, 1, 2]
    axis = int(rng.choice(axes)) if target.shape[0] > 1 else 0
    if target.shape[0] == 1:
        s = 0
    else:
        area = target.sum(axis=tuple(a for a in range(3) if a != axis))
        cand = np.flatnonzero(area >= 0.5 * area.max())
        s = int(cand[int(rng.integers(len(cand)))])
    sl = [slice(None)] * 3
    sl[axis] = s
    section = target[tuple(sl)]
    out = np.zeros_like(target)
    if lasso:
        drawn = ndi.binary_fill_holes(section)
        if rng.random() < 0.5:
            drawn = ndi.binary_dilation(drawn)
    else:
        idx = np.argwhere(section)
        lo = np.maximum(idx.min(0) - rng.integers(0, 3, 2), 0)
        hi = np.minimum(idx.max(0) + 1 + rng.integers(0, 3, 2), section.shape)
        drawn = np.zeros_like(section)
        drawn[lo[0]:hi[0], lo[1]:hi[1]] = True
    out[tuple(sl)] = drawn
    return out


def first_prompt(target: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """(positive, box) channels of a first prompt: a click (65 %), a box on one slice (20 %), a 3D
    box (5 %) or a lasso (10 %)."""
    pos = np.zeros_like(target)
    box = np.zeros_like(target)
    u = rng.random()
    if u < 0.65:
        net_model.ball(pos, interior_point(target, rng, jitter=0.4))
    elif u < 0.85 or target.shape[0] == 1 and u < 0.9:
        box = _slice_prompt(target, rng, lasso=False)
    elif u < 0.9:
        idx = np.argwhere(target)
        lo, hi = idx.min(0), idx.max(0) + 1
        box[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    else:
        box = _slice_prompt(target, rng, lasso=True)
    return pos | box, box


def correct(pred: np.ndarray, target: np.ndarray, pos: np.ndarray, neg: np.ndarray, rng=None) -> None:
    """Add one corrective click (in place) at the centre of the largest error region."""
    region, positive = largest_error(pred, target)
    if region is None:
        return
    net_model.ball(pos if positive else neg, interior_point(region, rng, jitter=0.2))


def perturbed(target: np.ndarray, rng) -> np.ndarray:
    """A plausible imperfect previous mask: too big, too small, a piece missing or an extra blob."""
    u = rng.random()
    flat = target.shape[0] == 1
    st = ndi.generate_binary_structure(3, 1)
    if flat:
        st[0] = st[2] = False
    it = int(rng.integers(1, 4))
    if u < 0.25:
        return ndi.binary_dilation(target, st, iterations=it)
    if u < 0.5:
        return ndi.binary_erosion(target, st, iterations=it)
    if u < 0.75:
        cut = synth_objects.blob(target.shape, rng, centre=np.array(interior_point(target, rng, 1.0), float),
                                 scale=0.3 * max(target.shape))
        return target & ~cut
    return target | synth_objects.blob(target.shape, rng, scale=0.2 * max(target.shape))


# -- batches -----------------------------------------------------------------------------------------
class Sample:
    """One scene and its prompt channels on the generator's grid (one slice for 2D scenes)."""

    def __init__(self, scene: synth_objects.Scene, rng) -> None:
        self.image = net_model.normalise(scene.image)
        self.target = scene.target
        self.pos, self.box = first_prompt(self.target, rng)
        self.neg = np.zeros_like(self.target)
        self.prev = np.zeros_like(self.target)

    def channels(self, depth: int) -> np.ndarray:
        x = np.stack([self.image, self.prev, self.pos, self.neg, self.box]).astype(np.float32)
        return np.repeat(x, depth, axis=1) if x.shape[1] == 1 and depth > 1 else x


def _rounds(n: int, first: float = 0.5) -> np.ndarray:
    p = np.full(n + 1, (1 - first) / max(n, 1))
    p[0] = first if n else 1.0
    return p / p.sum()


def draw(cfg: TrainConfig, rng) -> tuple[bool, list]:
    """(flat, samples): one batch's scenes with their first prompts (2D or 3D at random)."""
    flat = rng.random() < cfg.p2d
    shape = (1, *cfg.plane) if flat else tuple(cfg.patch)
    return flat, [Sample(synth_objects.scene(shape, rng), rng) for _ in range(cfg.batch2d if flat else cfg.batch)]


_CFG: Optional[TrainConfig] = None


def _worker_init(cfg: TrainConfig) -> None:
    global _CFG
    import torch

    torch.set_num_threads(1)
    _CFG = cfg


def _worker_draw(seed: int) -> tuple[bool, list]:
    return draw(_CFG, np.random.default_rng(seed))


def _predict(net, x, device: str) -> np.ndarray:
    import torch

    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
        return net(x.to(device)).float().cpu().numpy()


def make_batch(cfg: TrainConfig, rng, net=None, drawn: Optional[tuple] = None) -> tuple:
    """Input (B, 5, z, y, x) and target (B, 1, z, y, x) tensors after 0-max_iterations simulated
    corrective rounds (answered by ``net`` when given; otherwise by perturbing the target).
    ``drawn``: the batch's (flat, samples) from ``draw`` made elsewhere (worker processes)."""
    import torch

    flat, samples = drawn if drawn is not None else draw(cfg, rng)
    depth = cfg.slab if flat else 1
    # first prompts alone (half by default): the hardest case, and the one every object starts with
    rounds = _rounds(cfg.max_iterations, cfg.first_share)
    k = int(rng.choice(cfg.max_iterations + 1, p=rounds)) if net is not None else 0
    for _ in range(k):
        x = torch.from_numpy(np.stack([s.channels(depth) for s in samples]))
        logits = _predict(net, x, cfg.device)[:, 0]
        for s, lg in zip(samples, logits):
            s.prev = (lg[depth // 2: depth // 2 + 1] if flat else lg) > 0
            correct(s.prev, s.target, s.pos, s.neg, rng)
    if net is not None and rng.random() < cfg.p_perturbed:
        # an imperfect previous mask (too big half the time) and its fix: a network that is still
        # learning mostly under-segments, so its own rounds alone rarely teach negative clicks
        for s in samples:
            s.prev = perturbed(s.target, rng)
            correct(s.prev, s.target, s.pos, s.neg, rng)
    x = torch.from_numpy(np.stack([s.channels(depth) for s in samples]))
    y = np.stack([np.repeat(s.target[None], depth, axis=1) if flat else s.target[None] for s in samples])
    return x, torch.from_numpy(y.astype(np.float32))


def loss_fn(logits, target):
    import torch.nn.functional as F

    p = logits.sigmoid()
    dims = tuple(range(1, logits.ndim))
    dice = 1 - (2 * (p * target).sum(dims) + 1) / (p.sum(dims) + target.sum(dims) + 1)
    return dice.mean() + F.binary_cross_entropy_with_logits(logits, target)


# -- the loop ----------------------------------------------------------------------------------------
def train(cfg: TrainConfig, out: Optional[Path] = None, log: Callable[[str], None] = print,
          cancel=None, extra: Optional[Callable] = None, extra_share: float = 0.0) -> dict:
    """Train (resuming from ``out``/checkpoint.safetensors when present); returns the history.
    Writes ``out``/checkpoint.safetensors + checkpoint.json every cfg.checkpoint_every_s.
    ``extra(rng) -> (flat, [Scene])``: scenes from elsewhere (the store's corrections), drawn for
    ``extra_share`` of the batches instead of the generator's."""
    import torch

    from core.progress import check

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = net_model.build(cfg.arch).float()
    if cfg.init:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(cfg.init))
    net = net.to(cfg.device)
    cuda = cfg.device.startswith("cuda")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-5)
    state = {"step": 0, "seconds": 0.0, "losses": [], "config": asdict(cfg)}
    out = Path(out) if out is not None else None
    if out is not None and (out / "checkpoint.json").is_file():
        from safetensors.torch import load_file

        state = json.loads((out / "checkpoint.json").read_text())
        net.load_state_dict(load_file(str(out / "checkpoint.safetensors"), device=cfg.device))
        rng = np.random.default_rng([cfg.seed, state["step"]])
        log(f"resumed at step {state['step']} ({state['seconds'] / 60:.1f} min)")
    fixed = make_batch(cfg, rng) if cfg.repeat_batch else None
    pool = drawn = None
    if cfg.workers:
        import multiprocessing as mp

        pool = mp.get_context("fork").Pool(cfg.workers, initializer=_worker_init, initargs=(cfg,))
        seeds = (int(v) for v in np.random.default_rng([cfg.seed, state["step"], 1]).integers(0, 2**62, 10**9))
        drawn = pool.imap(_worker_draw, seeds, chunksize=2)
    start, last_ckpt = time.perf_counter() - state["seconds"], time.perf_counter()
    budget = cfg.minutes * 60
    while state["step"] < cfg.steps and time.perf_counter() - start < budget:
        check(cancel)
        frac = max(state["step"] / cfg.steps, (time.perf_counter() - start) / budget)
        for g in opt.param_groups:
            g["lr"] = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(frac, 1.0)))
        net.eval()
        if fixed is not None:
            x, y = fixed
        else:
            if extra is not None and rng.random() < extra_share:
                flat, scenes = extra(rng)
                batch = (flat, [Sample(scene, rng) for scene in scenes])
            else:
                batch = next(drawn) if drawn else None
            x, y = make_batch(cfg, rng, net, batch)
        net.train()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = net(x.to(cfg.device))
        loss = loss_fn(logits.float(), y.to(cfg.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        state["step"] += 1
        state["losses"].append(round(float(loss.detach()), 5))
        if state["step"] % 50 == 0:
            log(f"step {state['step']}  loss {np.mean(state['losses'][-50:]):.4f}  "
                f"lr {opt.param_groups[0]['lr']:.2e}  {(time.perf_counter() - start) / 60:.1f} min")
        if out is not None and time.perf_counter() - last_ckpt > cfg.checkpoint_every_s:
            state["seconds"] = time.perf_counter() - start
            _checkpoint(net, state, out)
            last_ckpt = time.perf_counter()
    state["seconds"] = time.perf_counter() - start
    if pool is not None:
        pool.terminate()
    if cuda:
        state["hardware"] = (f"one {torch.cuda.get_device_name()} (bf16 mixed precision), scenes drawn by "
                             f"{cfg.workers} processes" + (", fine-tuned from the given weights" if cfg.init else ""))
    net = net.cpu().float()
    if out is not None:
        _checkpoint(net, state, out)
    state["net"] = net
    return state


def _checkpoint(net, state: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    net_model.save_weights(net, out / "checkpoint.safetensors")
    tmp = out / "checkpoint.json.tmp"
    tmp.write_text(json.dumps({k: v for k, v in state.items() if k != "net"}))
    tmp.replace(out / "checkpoint.json")


TRAINING_DATA = (
    "Generated only (inference/interactive/synth_objects.py): one target object per scene among 0-4 distractor "
    "objects on a background partitioned into 2-5 random regions; shapes are lumpy ellipsoids, unions of "
    "ellipsoids, curved tubes, (open) shells and pieces of thresholded smooth noise, from a few voxels to larger "
    "than the scene; random intensities and contrast (at least 0.15 of the range against the surroundings), "
    "texture, blur, thick-slice sampling, bias field, gamma, Gaussian or speckle noise, arbitrary units. "
    "3D scenes of 48^3 isotropic voxels and 2D scenes of 64^2 (as 16-slice slabs). Prompts simulated as in the "
    "CVPR 2025 interactive challenge: a first click (65 %), box on one slice (20 %), 3D box (5 %) or lasso "
    "(10 %), then 0-{rounds} corrective clicks at the most interior point of the largest error region answered "
    "by the network itself (none in {first:.0f} % of the batches), and in {perturbed:.0f} % of batches an imperfect "
    "previous mask (dilated, eroded, cut or with an extra blob) and one corrective click. No anatomy, organ "
    "phantom, template brain or ultrasound lesion model was used.")


def training_data(cfg: dict) -> str:
    """The card's description of the data and prompting ``cfg`` (a TrainConfig as a dict) trained on."""
    return TRAINING_DATA.format(rounds=cfg.get("max_iterations", 3), first=100 * cfg.get("first_share", 0.5),
                                perturbed=100 * cfg.get("p_perturbed", 0.2))


def write_model(net, state: dict, folder: Path, version: str, metrics: Optional[list] = None) -> dict:
    """Weights (safetensors) and the model's card (net_model.CARD_NAME) in ``folder``."""
    import hashlib
    import platform

    from inference.card import NOT_CLINICAL

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net_model.save_weights(net, folder / "model.safetensors")
    cfg = state["config"]
    losses = state["losses"]
    card = {
        "id": net_model.MODEL_ID, "version": version,
        "name": "Promptable network (class-agnostic, click/box/scribble/lasso)",
        "kind": "interactive", "engine": "network",
        "architecture": "UNet (MONAI)", "parameters": cfg["arch"], "spatial_dims": 3,
        "in_channels": net_model.IN_CHANNELS,
        "channels": ["image (percentile-normalised in the ROI; CT clipped to %g..%g HU first)" % net_model.CT_CLIP,
                     "previous mask", "positive prompts", "negative prompts", "boxes and lassos"],
        "input": {"net_size": net_model.NET_SIZE, "multiple": net_model.MULTIPLE, "slab_2d": net_model.SLAB,
                  "grid": "ROI on the image's index grid resampled to isotropic voxels"},
        "modality": "any (CT, MR, US, other)",
        "training_data": training_data(cfg),
        "training": {"steps": state["step"], "minutes": round(state["seconds"] / 60, 1),
                     "final_loss": float(np.mean(losses[-100:])) if losses else float("nan"),
                     "first_loss": float(np.mean(losses[:100])) if losses else float("nan"),
                     "loss": "soft Dice + BCE", "optimiser": f"AdamW lr {cfg['lr']} cosine to {cfg['lr_min']}",
                     "hardware": state.get("hardware") or (
                         f"CPU only ({platform.processor() or platform.machine()}), {cfg['threads']} "
                         "thread(s), fp32, shared with other jobs"),
                     "seed": cfg["seed"]},
        "metrics": metrics or [],
        "limits": "",
        "licence": "Apache-2.0 (weights and code)",
        "intended_use": NOT_CLINICAL,
        "weights": "model.safetensors",
        "weights_sha256": hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest(),
    }
    (folder / net_model.CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    return card


if __name__ == "__main__":  # python -m inference.interactive.train_prompts OUT MINUTES
    import sys

    folder = Path(sys.argv[1])
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "train.log", "a") as fh:
        def _log(msg: str) -> None:
            fh.write(msg + "\n")
            fh.flush()

        train(TrainConfig(minutes=minutes), folder, _log)
