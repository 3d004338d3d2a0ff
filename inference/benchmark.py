"""The model benchmark: every architecture family trained on the same generated data, with the same
budget, seed and loss, evaluated on the same held-out cases through the real runner.

    python main.py benchmark-models --task us --budget 2

Each architecture trains in its own process, ``python -m inference.benchmark TASK ARCH`` (so its
peak memory is its own and one crash costs one row), is registered as a model (``bench-<task>-<arch>``, usable, explainable and correctable in
the app) and reports one row; the table is written as Markdown, CSV and a plot.
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

HELDOUT_SEED = 20_000  # not the recipes' own held-out seed: a set no model was selected on


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    architecture: str
    params_2d: dict
    params_3d: dict
    note: str = ""

    @property
    def key(self) -> str:
        return self.architecture.lower()


_UNET = {"channels": [16, 32, 64, 128], "strides": [2, 2, 2]}
ENTRIES = (
    Entry("U-Net (3D U-Net on 3D tasks)", "U-Net family", "UNet", _UNET, _UNET),
    Entry("Attention U-Net", "U-Net family", "AttentionUnet", _UNET, _UNET),
    Entry("UNet++", "U-Net family", "BasicUNetPlusPlus", {"features": [16, 16, 32, 64, 128, 16]},
          {"features": [8, 8, 16, 32, 64, 8]}),
    Entry("ResUNet++ (residual + SE + ASPP)", "U-Net family", "ResUNetPP", {"channels": [16, 32, 64, 128]},
          {"channels": [16, 32, 64, 128]}),
    Entry("DynUNet (nnU-Net-like)", "U-Net family", "DynUNet",
          {"kernel_size": [3, 3, 3, 3], "strides": [1, 2, 2, 2], "upsample_kernel_size": [2, 2, 2],
           "filters": [16, 32, 64, 128]},
          {"kernel_size": [3, 3, 3, 3], "strides": [1, 2, 2, 2], "upsample_kernel_size": [2, 2, 2],
           "filters": [16, 32, 64, 128]}),
    Entry("FCN-8s", "classic CNN", "FCN", {"channels": [16, 32, 64, 128]}, {"channels": [16, 32, 64, 128]}),
    Entry("DeepLabV3+-style (ASPP)", "classic CNN", "DeepLab", {"channels": [16, 32, 64]}, {"channels": [16, 32, 64]}),
    Entry("SegNet (pooling indices)", "classic CNN", "SegNet", {"channels": [16, 32, 64, 128]},
          {"channels": [16, 32, 64]}),
    Entry("SegResNet", "classic CNN", "SegResNet", {"init_filters": 16, "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1]},
          {"init_filters": 8, "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1]}),
    Entry("UNETR (ViT encoder)", "Transformer", "UNETR",
          {"feature_size": 16, "hidden_size": 192, "mlp_dim": 384, "num_heads": 4},
          {"feature_size": 16, "hidden_size": 192, "mlp_dim": 384, "num_heads": 4}),
    Entry("Swin-UNETR", "Transformer", "SwinUNETR", {"feature_size": 24}, {"feature_size": 12}),
    Entry("TransUNet-style CNN-Transformer hybrid", "Transformer", "TransUNet",
          {"channels": [16, 32, 64, 128], "hidden_size": 128, "num_layers": 4, "num_heads": 4},
          {"channels": [16, 32, 64, 128], "hidden_size": 128, "num_layers": 4, "num_heads": 4}),
    Entry("U-Net + adversarial shape prior (SegAN-style)", "generative", "AdversarialUNet",
          dict(_UNET, critic_channels=[16, 32, 64]), dict(_UNET, critic_channels=[8, 16, 32])),
    Entry("Diffusion segmentation (MedSegDiff-style, DDIM 10 steps x 2 samples)", "generative", "DiffusionSegmenter",
          {"channels": [32, 64, 64], "attention_levels": [False, False, True]},
          {"channels": [16, 32, 32], "attention_levels": [False, False, True], "norm_num_groups": 8}),
)
COLUMNS = ("model", "family", "architecture", "dice", "iou", "hd95_mm", "hd95_failures", "ece", "parameters",
           "iterations", "train_s", "infer_cpu_s", "infer_gpu_s", "peak_mib", "sane")
SANE_DICE = 0.5  # below this on the held-out set the table says so instead of hiding the row


TASK_DIMS = {"us": 2, "ct": 3, "brain": 3}
COMMITTED = Path(__file__).resolve().parent.parent / "resources" / "benchmarks"


def committed_rows(folder: Path = COMMITTED) -> dict:
    """(task, architecture, spatial dims) -> the committed benchmark row, with its rank by Dice."""
    out = {}
    for path in sorted(Path(folder).glob("benchmark-*.csv")):
        task = path.stem.split("-", 1)[1]
        rows = list(csv.DictReader(path.open()))
        ranked = sorted([r for r in rows if r.get("dice")], key=lambda r: -float(r["dice"]))
        for r in rows:
            r["rank"] = ranked.index(r) + 1 if r in ranked else "–"
            r["of"] = len(ranked)
            out[(task, r["architecture"], TASK_DIMS.get(task, 3))] = r
    return out


def recipe_for(task: str, entry: Entry):
    """The task's recipe with only the network swapped: same data, patch, loss, optimiser, batch."""
    from dataclasses import replace

    from inference.training.recipes import RECIPES

    base = RECIPES[task]()
    params = entry.params_2d if base.spatial_dims == 2 else entry.params_3d
    return replace(base, id=f"bench-{task}-{entry.key}", version="1.0.0", architecture=entry.architecture,
                   parameters=dict(params), name=f"{entry.name} ({task} benchmark)",
                   notes=f"{base.notes} Trained by the model benchmark: same data, budget and seed as every other "
                         f"row of docs/benchmark-{task}.md; not tuned for this architecture.")


def evaluate_row(net, card, cases, device: str = "cpu") -> dict:
    """Dice, IoU, HD95 (mm) of the foreground labels and ECE of the probabilities, mean over cases."""
    from core.metrics import dice, hausdorff, iou
    from inference.runner import segment
    from inference.xai import calibration

    dices, ious, hds, eces, times, failures = [], [], [], [], [], 0
    for vol, truth in cases:
        t = time.perf_counter()
        seg = segment(vol, card, net=net, device=device)
        times.append(time.perf_counter() - t)
        for lab in card.labels:
            pred, ref = seg.labels.array == lab.value, truth.array == lab.value
            dices.append(dice(pred, ref))
            ious.append(iou(pred, ref))
            hd = hausdorff(pred, ref, vol.geometry.spacing, 95)
            if math.isfinite(hd):
                hds.append(hd)
            else:
                failures += 1
        eces.append(calibration(seg.probabilities.astype(np.float32), truth.array)["ece"])
    return {"dice": float(np.mean(dices)), "iou": float(np.mean(ious)),
            "hd95_mm": float(np.mean(hds)) if hds else None, "hd95_failures": failures,
            "ece": float(np.mean(eces)), "infer_s": float(np.median(times))}


def run_one(task: str, name: str, budget_s: Optional[float], iterations: Optional[int], out: Path,
            models_root: Path, heldout: int, seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """Train and evaluate one architecture in this process; returns its row (also the card's metrics)."""
    import shutil

    import torch

    from core.memory import peak_rss_bytes
    from inference.card import Metric
    from inference.networks import build
    from inference.training.train import train
    from inference.weights import load_into

    entry = next(e for e in ENTRIES if e.key == name or e.architecture == name)
    recipe = recipe_for(task, entry)
    folder = Path(models_root) / recipe.id / recipe.version
    shutil.rmtree(folder, ignore_errors=True)  # a re-run replaces the previous benchmark model
    stats: dict = {}
    card = train(recipe, Path(models_root), iterations=iterations, seed=seed, heldout_cases=0, log=log,
                 budget_s=budget_s, out_folder=folder, stats=stats)
    net = build(card.architecture, card.spatial_dims, card.in_channels, card.n_classes, card.parameters,
                card.patch_size)
    load_into(net, card.weights_path, card.weights_sha256)
    net.eval()
    cases = recipe.heldout(heldout, HELDOUT_SEED)
    row = {"model": entry.name, "family": entry.family, "architecture": entry.architecture}
    scores = evaluate_row(net, card, cases)
    row.update({k: scores[k] for k in ("dice", "iou", "hd95_mm", "hd95_failures", "ece")})
    row.update(parameters=stats["parameters"], iterations=stats["iterations"], train_s=round(stats["train_seconds"], 1),
               infer_cpu_s=round(scores["infer_s"], 3), infer_gpu_s=None)
    if torch.cuda.is_available():
        row["infer_gpu_s"] = round(evaluate_row(net, card, cases[:2], device="cuda")["infer_s"], 3)
    row["peak_mib"] = round(peak_rss_bytes() / 2**20, 0)
    row["sane"] = row["dice"] >= SANE_DICE
    data = f"model benchmark '{task}': {heldout} held-out generated cases (seed {HELDOUT_SEED}), budget " + \
        (f"{budget_s / 60:g} min" if budget_s else f"{iterations} iterations")
    card.metrics = [Metric("Benchmark Dice", row["dice"], data), Metric("Benchmark IoU", row["iou"], data),
                    Metric("Benchmark ECE", row["ece"], data)]
    if row["hd95_mm"] is not None:
        card.metrics.append(Metric("Benchmark HD95 mm", row["hd95_mm"], data))
    card.save(folder)
    (Path(out) / "rows").mkdir(parents=True, exist_ok=True)
    (Path(out) / "rows" / f"{entry.key}.json").write_text(json.dumps(row, indent=1))
    return row


def run(task: str, out: Path, budget_min: Optional[float] = 2.0, iterations: Optional[int] = None,
        only: Optional[list[str]] = None, heldout: int = 8, models_root: Optional[Path] = None,
        log: Callable[[str], None] = print) -> list[dict]:
    """Every architecture (or ``only``) in its own process, then the table, CSV and plot."""
    from inference.registry import user_models_dir

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models_root = Path(models_root) if models_root else user_models_dir()
    rows = []
    for entry in ENTRIES:
        if only and entry.key not in [o.lower() for o in only] and entry.architecture not in only:
            continue
        cmd = [sys.executable, "-m", "inference.benchmark", task, entry.key, "--out", str(out),
               "--models", str(models_root), "--heldout", str(heldout)]
        cmd += ["--iterations", str(iterations)] if iterations else ["--budget", str(budget_min)]
        log(f"== {entry.name}")
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_child_env())
        row_file = out / "rows" / f"{entry.key}.json"
        if proc.returncode != 0 or not row_file.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            row = {"model": entry.name, "family": entry.family, "architecture": entry.architecture,
                   "sane": False, "error": tail[0][:200]}
            row_file.parent.mkdir(parents=True, exist_ok=True)
            row_file.write_text(json.dumps(row, indent=1))
            log(f"   failed: {row['error']}")
        else:
            row = json.loads(row_file.read_text())
            log(f"   Dice {row['dice']:.3f}  {row['iterations']} iterations  {time.perf_counter() - t:.0f} s")
        rows.append(row)
    # the table holds every row in the folder, so `--only X` re-runs update one row of a full table
    everything = [json.loads((out / "rows" / f"{e.key}.json").read_text()) for e in ENTRIES
                  if (out / "rows" / f"{e.key}.json").exists()]
    write_table(everything, task, out, budget_min if not iterations else None, iterations, heldout)
    return rows


def _child_env() -> dict:
    """This environment, with the project root importable (the child runs ``-m inference.benchmark``
    from the caller's folder, so relative --out/--models paths mean the same there)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _f(x, fmt):
    return "–" if x is None else format(x, fmt)


def write_table(rows: list[dict], task: str, out: Path, budget_min, iterations, heldout: int) -> None:
    budget = f"{budget_min:g} min of training per model" if budget_min else f"{iterations} iterations per model"
    with open(out / f"benchmark-{task}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS + ("error",), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    lines = [f"Task `{task}`, {budget} (same generated data, seed, loss, optimiser and batch), "
             f"{heldout} held-out generated cases through the runner. Dice/IoU/HD95 of the foreground labels, "
             f"ECE of the top-class probability.", "",
             "| model | family | Dice | IoU | HD95 mm | ECE | params | iterations | train s | CPU s/case "
             "| GPU s/case | peak MiB |", "|" + "---|" * 12]
    for r in sorted(rows, key=lambda r: -(r.get("dice") or -1)):
        if "error" in r:
            lines.append(f"| {r['model']} | {r['family']} | failed: {r['error']} |" + " |" * 9)
            continue
        flag = "" if r["sane"] else " ⚠ below sane Dice"
        hd = _f(r["hd95_mm"], ".1f") + (f" ({r['hd95_failures']} empty)" if r.get("hd95_failures") else "")
        lines.append(f"| {r['model']}{flag} | {r['family']} | {r['dice']:.3f} | {r['iou']:.3f} | {hd} | "
                     f"{r['ece']:.3f} | {r['parameters'] / 1e6:.2f} M | {r['iterations']} | {r['train_s']:.0f} | "
                     f"{r['infer_cpu_s']:.2f} | {_f(r.get('infer_gpu_s'), '.3f')} | {r['peak_mib']:.0f} |")
    (out / f"benchmark-{task}.md").write_text("\n".join(lines) + "\n")
    _plot(rows, task, out, budget)


def _plot(rows, task, out: Path, budget: str) -> None:
    from matplotlib.figure import Figure

    done = sorted([r for r in rows if "error" not in r], key=lambda r: r["dice"])
    if not done:
        return
    fig = Figure(figsize=(9, 0.42 * len(done) + 1.6))
    ax, ax2 = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    colours = {"U-Net family": "#4c72b0", "classic CNN": "#55a868", "Transformer": "#c44e52", "generative": "#8172b2"}
    y = np.arange(len(done))
    ax.barh(y, [r["dice"] for r in done], color=[colours.get(r["family"], "grey") for r in done])
    ax.set_yticks(y, [r["model"][:42] for r in done], fontsize=8)
    ax.set_xlim(0, 1)
    ax.axvline(SANE_DICE, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("held-out Dice")
    ax2.barh(y, [r["infer_cpu_s"] for r in done], color="0.6")
    ax2.set_xlabel("CPU seconds per case")
    fig.suptitle(f"Model benchmark '{task}' — {budget}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / f"benchmark-{task}.png", dpi=120)


def _child(argv: list[str]) -> int:
    """One architecture in this process: the child ``run`` starts for each row."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m inference.benchmark", description="train and evaluate one "
                                "architecture of the model benchmark (main.py benchmark-models runs them all)")
    p.add_argument("task", choices=sorted(TASK_DIMS))
    p.add_argument("architecture", help="an entry's architecture, e.g. unet or SegNet")
    p.add_argument("--out", required=True, help="folder the row is written to (rows/ARCH.json)")
    p.add_argument("--models", required=True, help="where the trained model is registered")
    p.add_argument("--heldout", type=int, default=8)
    p.add_argument("--budget", type=float, default=2.0, help="training minutes")
    p.add_argument("--iterations", type=int, help="a fixed number of iterations instead of the budget")
    args = p.parse_args(argv)
    budget_s = None if args.iterations else args.budget * 60
    run_one(args.task, args.architecture, budget_s, args.iterations, Path(args.out), Path(args.models), args.heldout,
            log=lambda m: print(m, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
