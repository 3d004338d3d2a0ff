"""Whether a model's confidence and its case uncertainty mean what they say, measured on held-out
cases of its training generator: the reliability diagram and expected calibration error (ECE) of
the top-class probability over every voxel, and the one-pass case uncertainty (the guard's, saved
with each correction) against the case's Dice. Recorded in the card as ``calibration``."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from core.progress import CancelToken, ProgressFn, check, no_progress

BINS = 10
SEED = 60_000  # apart from training (0...), held-out metrics (10000, 20000), the guard (30000), tests (40000, 50000)
SAMPLE = 400_000  # voxels per case pooled into the diagram (strided): enough for 10 bins, bounded memory


def _case_dice(pred: np.ndarray, truth: np.ndarray, values) -> float:
    """Mean Dice over the labels present in the truth or the prediction."""
    ds = []
    for v in values:
        a, b = pred == v, truth == v
        n = int(a.sum()) + int(b.sum())
        if n:
            ds.append(2.0 * int((a & b).sum()) / n)
    return float(np.mean(ds)) if ds else 1.0


def _bins(top: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """(voxels, correct, summed confidence) per confidence bin."""
    idx = np.clip((top * BINS).astype(int), 0, BINS - 1)
    return np.stack([np.bincount(idx, minlength=BINS), np.bincount(idx, weights=hit, minlength=BINS),
                     np.bincount(idx, weights=top, minlength=BINS)]).astype(np.float64)


def _ece(counts, correct, conf) -> float:
    n = np.maximum(counts, 1)
    return float(np.sum(counts / max(counts.sum(), 1) * np.abs(correct / n - conf / n)))


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def measure(card, cases: int = 8, seed: int = SEED, device: str = "cpu", progress: ProgressFn = no_progress,
            cancel: Optional[CancelToken] = None) -> dict:
    """The card's calibration on ``cases`` held-out generated cases (not saved). Runs in fp32 like
    every measurement that must not depend on the machine."""
    from core.errors import DelineateError
    from inference import device as devices
    from inference.envelope import run_uncertainty
    from inference.runner import load_model, segment
    from inference.training.recipes import RECIPES, recipe_for

    recipe = recipe_for(card.id, card.version)
    if recipe is None:
        raise DelineateError(f"{card.id}: no training generator is known for it, so no held-out cases to "
                             "calibrate on")
    held = RECIPES[recipe]().heldout(cases, seed)
    net = load_model(card, devices.pick(device))
    counts, correct, conf = np.zeros(BINS), np.zeros(BINS), np.zeros(BINS)
    every = np.zeros((3, BINS))  # every voxel: mostly easy background, so its small ECE says little
    per_case = []
    was = devices._FAST_BF16
    devices._FAST_BF16 = False
    try:
        for n, (volume, truth) in enumerate(held):
            check(cancel)
            progress(n / len(held), f"held-out case {n + 1} of {len(held)}")
            run = segment(volume, card, net=net, device=device)
            p = np.asarray(run.probabilities, np.float32).reshape(run.probabilities.shape[0], -1)
            t = truth.array.reshape(-1)
            step = max(1, p.shape[1] // SAMPLE)
            p, t = p[:, ::step], t[::step]
            top, hit = p.max(0), np.argmax(p, 0) == t
            every += _bins(top, hit)
            # the diagram over the voxels that matter: truth or prediction not background
            fg = (t > 0) | (np.argmax(p, 0) > 0)
            top, hit = top[fg], hit[fg]
            c, h, f = _bins(top, hit)
            counts, correct, conf = counts + c, correct + h, conf + f
            per_case.append([round(run_uncertainty(run.probabilities), 5),
                             round(_case_dice(run.labels.array, truth.array, [lab.value for lab in card.labels]), 4)])
    finally:
        devices._FAST_BF16 = was
    progress(1.0, "calibrated")
    acc = correct / np.maximum(counts, 1)
    mean_conf = conf / np.maximum(counts, 1)
    rho = spearman([u for u, _ in per_case], [d for _, d in per_case])
    return {"ece": round(_ece(counts, correct, conf), 5), "ece_all_voxels": round(_ece(*every), 5), "bins": BINS,
            "confidence": [round(float(c), 4) for c in mean_conf], "accuracy": [round(float(a), 4) for a in acc],
            "voxels": [int(c) for c in counts], "uncertainty_dice": per_case,
            "spearman_uncertainty_dice": None if math.isnan(rho) else round(rho, 3),
            "measured_on": f"{len(held)} held-out generated cases (seed {seed}), fp32; reliability of the top-class "
                           "probability over voxels labelled in the truth or the prediction; case uncertainty = "
                           "one-pass mean normalised entropy"}


def plot(calibration: dict, title: str, path) -> None:
    """Reliability diagram and case uncertainty against Dice, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4), dpi=100)
    n = calibration["bins"]
    centres = (np.arange(n) + 0.5) / n
    shown = np.asarray(calibration["voxels"]) > 0
    a.bar(centres[shown], np.asarray(calibration["accuracy"])[shown], width=1 / n, edgecolor="k", alpha=0.7,
          label="accuracy")
    a.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    a.plot(np.asarray(calibration["confidence"])[shown], np.asarray(calibration["accuracy"])[shown], "o-",
           color="tab:red", ms=3, label="mean confidence")
    a.set(xlim=(0, 1), ylim=(0, 1), xlabel="top-class probability", ylabel="fraction correct",
          title=f"Reliability (ECE {calibration['ece']:.3f})")
    a.legend(loc="upper left", fontsize=8)
    u = [c[0] for c in calibration["uncertainty_dice"]]
    d = [c[1] for c in calibration["uncertainty_dice"]]
    b.scatter(u, d, s=18)
    rho = calibration.get("spearman_uncertainty_dice")
    b.set(xlabel="case uncertainty (mean normalised entropy)", ylabel="mean Dice over labels",
          title=f"Uncertainty vs Dice (Spearman {rho if rho is not None else 'n/a'})")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
