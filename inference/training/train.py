"""One training loop for every recipe: random generated patches, Dice + cross-entropy, AdamW with a
cosine schedule, then held-out Dice measured through the real runner, weights + card written.

    python main.py train brain|ct|us [--iterations N] [--out DIR]
"""
from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from core.labels import LabelMap, LabelTable
from core.metrics import dice
from core.progress import CancelToken, ProgressFn, check, no_progress
from core.volume import Volume
from inference.card import Metric, ModelCard
from inference.device import cpu_has_fast_bf16
from inference.networks import build
from inference.runner import segment
from inference.training.augment import random_crop
from inference.weights import save_weights


@dataclass
class Recipe:
    id: str
    version: str
    name: str
    architecture: str
    parameters: dict
    spatial_dims: int
    modality: str
    patch_size: list[int]
    labels: LabelTable
    normalisation: dict
    training_data: str
    sample: Callable  # (torch.Generator) -> (image, labels) arrays on the model grid
    heldout: Callable  # (n, seed) -> list[(Volume, LabelMap)]
    spacing: Optional[list[float]] = None
    orientation: Optional[str] = "LPS"
    iterations: int = 600
    batch: int = 2
    crops_per_sample: int = 1  # patches cut from one generated sample (when generating dominates)
    lr: float = 2e-3
    notes: str = ""
    keep_largest_component: bool = False
    inside_body: Optional[dict] = None  # the card's anatomical rule (inference.inside_body)
    mask_from: Optional[dict] = None  # the card's region model (inference.mask_from)
    most_pieces: Optional[dict] = None  # the card's count of pieces per label (inference.runner.most_pieces)
    extra_metrics: Callable = field(default=None)  # (net, card) -> list[Metric]
    describe: Callable = field(default=None)  # (net, card) -> text for the card's notes (real-data checks)


def _card(r: Recipe) -> ModelCard:
    return ModelCard(id=r.id, version=r.version, name=r.name, architecture=r.architecture,
                     parameters=r.parameters, spatial_dims=r.spatial_dims, modality=r.modality, in_channels=1,
                     labels=r.labels, normalisation=r.normalisation, patch_size=r.patch_size,
                     training_data=r.training_data, licence="Apache-2.0 (weights and code)",
                     spacing=r.spacing, orientation=r.orientation, notes=r.notes,
                     keep_largest_component=r.keep_largest_component, inside_body=r.inside_body,
                     mask_from=r.mask_from, most_pieces=r.most_pieces, created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def sample_crops(r: Recipe, rng: torch.Generator, n: int) -> list:
    """``n`` random patches ([1, ...] image float and label int64 tensors) of one generated sample."""
    x0, y0 = r.sample(rng)
    x0, y0 = torch.from_numpy(np.ascontiguousarray(x0))[None], torch.from_numpy(y0.astype(np.int64))[None]
    return [random_crop([x0, y0], r.patch_size, rng, focus=lambda ts: ts[1][0] > 0) for _ in range(n)]


def _batch(r: Recipe, rng: torch.Generator):
    crops = []
    while len(crops) < r.batch:  # crops_per_sample patches of each generated sample
        crops += sample_crops(r, rng, min(r.crops_per_sample, r.batch - len(crops)))
    xs, ys = zip(*crops)
    return torch.stack(xs).float(), torch.stack(ys)


def case_dice(net, card: ModelCard, cases) -> np.ndarray:
    """Dice [case, label] (labels in card order), each case run through the runner like a user's image."""
    values = [lab.value for lab in card.labels]
    out = np.zeros((len(cases), len(values)))
    for i, (vol, truth) in enumerate(cases):
        seg = segment(vol, card, net=net, device="cpu")
        out[i] = [dice(seg.labels.array == v, truth.array == v) for v in values]
    return out


def evaluate(net, card: ModelCard, cases) -> dict[int, float]:
    """Mean Dice per label over held-out cases."""
    scores = case_dice(net, card, cases)
    return {lab.value: float(scores[:, i].mean()) for i, lab in enumerate(card.labels)}


def train(r: Recipe, out_root: Path, iterations: Optional[int] = None, seed: int = 0, heldout_cases: int = 4,
          progress: ProgressFn = no_progress, cancel: Optional[CancelToken] = None,
          log: Callable[[str], None] = print, parent: Optional[ModelCard] = None, version: Optional[str] = None,
          lr: Optional[float] = None, budget_s: Optional[float] = None, out_folder: Optional[Path] = None,
          stats: Optional[dict] = None, checkpoint_every: int = 0) -> ModelCard:
    """``parent``: start from that model's weights (a new version that records its parent).
    ``budget_s``: train for this many seconds instead of a number of iterations (the learning rate
    follows the cosine over the elapsed fraction of the budget), as the model benchmark does.
    ``checkpoint_every``: also write the weights every N iterations to ``checkpoint.safetensors`` in
    the output folder, so a long CPU run can be checked before it ends."""
    from inference.monai_light import light

    DiceCELoss = light("monai.losses").DiceCELoss

    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    iterations = iterations or r.iterations
    card = _card(r)
    net = build(r.architecture, r.spatial_dims, 1, card.n_classes, r.parameters, r.patch_size)
    if parent is not None:
        from inference.weights import load_into

        load_into(net, parent.weights_path, parent.weights_sha256)
        card.parent_version = parent.version
        log(f"[{r.id}] starting from {parent.id} v{parent.version}")
    if version:
        card.version = version
    folder = Path(out_folder) if out_folder else Path(out_root) / r.id / card.version
    params = net.segmentation_parameters() if hasattr(net, "segmentation_parameters") else net.parameters()
    base_lr = lr or r.lr
    opt = torch.optim.AdamW(params, lr=base_lr, weight_decay=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    amp = cpu_has_fast_bf16()  # bf16 mixed precision where the CPU has bf16 units (5-8x faster)
    t0 = time.perf_counter()
    net.train()
    running = None
    it = 0
    while (time.perf_counter() - t0 < budget_s) if budget_s else it < iterations:
        check(cancel)
        frac = (time.perf_counter() - t0) / budget_s if budget_s else it / iterations
        for group in opt.param_groups:
            group["lr"] = base_lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        x, y = _batch(r, rng)
        target = y[:, None] if y.ndim == x.ndim - 1 else y
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            if hasattr(net, "training_loss"):  # generative settings train their own way (inference/generative.py)
                loss = net.training_loss(x, target, loss_fn)
            else:
                out = net(x)
                if isinstance(out, (list, tuple)):
                    out = out[0]
                loss = loss_fn(out.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        value = float(loss.detach())
        running = value if running is None else 0.95 * running + 0.05 * value
        done = frac if budget_s else it / iterations
        progress(0.9 * done, f"iteration {it} loss {running:.3f}")
        if it % 25 == 0 or it == 1:
            log(f"[{r.id}] iteration {it}  loss {running:.4f}  {time.perf_counter() - t0:.0f} s")
        if checkpoint_every and it % checkpoint_every == 0:
            folder.mkdir(parents=True, exist_ok=True)
            save_weights(net, folder / "checkpoint.safetensors")
    iterations = it
    train_seconds = time.perf_counter() - t0
    scores = finish(r, net, card, heldout_cases, log)
    card.notes = (card.notes + (f" Fine-tuned from v{parent.version} for" if parent else " Trained")
                  + f" {iterations} iterations x batch {r.batch} on CPU"
                  f"{' (bf16 mixed precision)' if amp else ''} in "
                  f"{time.perf_counter() - t0:.0f} s (seed {seed}).").strip()
    if stats is not None:
        stats.update(iterations=iterations, train_seconds=train_seconds, parameters=sum(
            p.numel() for p in net.parameters()), scores=scores)
    folder.mkdir(parents=True, exist_ok=True)
    card.weights_sha256 = save_weights(net, folder / card.weights)
    card.save(folder)
    card.folder = folder
    progress(1.0, "done")
    log(f"[{r.id}] wrote {folder}")
    return card


def finish(r: Recipe, net, card: ModelCard, heldout_cases: int = 4,
           log: Callable[[str], None] = print) -> dict[int, float]:
    """The card's measurements of a trained ``net`` (CPU, fp32, through the runner): held-out Dice
    (``heldout_cases`` 0: the caller measures the model its own way, as the model benchmark does),
    the recipe's extra metrics and its real-data description. Returns the held-out scores."""
    net.eval()
    scores: dict[int, float] = {}
    if heldout_cases:
        log(f"[{r.id}] evaluating on {heldout_cases} held-out generated cases")
        heldout_seed = 10_000  # one fixed held-out set, so versions trained with other seeds compare
        scores = evaluate(net, card, r.heldout(heldout_cases, heldout_seed))
        names = {lab.value: lab.name for lab in r.labels}
        data = f"{heldout_cases} held-out generated cases (seed {heldout_seed}), not seen in training"
        card.metrics = [Metric(f"Dice {names[v]}", s, data) for v, s in scores.items()]
        card.metrics.append(Metric("Dice mean", float(np.mean(list(scores.values()))), data))
    if r.extra_metrics is not None:
        card.metrics += r.extra_metrics(net, card)
    for m in card.metrics:
        log(f"[{r.id}] {m.name}: {m.value:.4f}  ({m.data})")
    if r.describe is not None:
        text = r.describe(net, card)
        log(f"[{r.id}] {text}")
        card.notes = f"{card.notes} {text}".strip()
    return scores


def volume_case(image: np.ndarray, labels: np.ndarray, grid, table: LabelTable, modality: str):
    """A held-out case as the runner sees a user's image (3D arrays on ``grid``)."""
    vol = Volume(image.astype(np.float32), grid, modality=modality)
    return vol, LabelMap(labels.astype(np.uint8), grid, table)
