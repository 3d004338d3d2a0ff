#!/usr/bin/env python3
"""Latency of an interactive prompt vs one whole-image inference of the default CT model, on the
same CT phantom image, same run, 2 torch threads (the issue's budget: <= 0.5 s per prompt and
<= 0.25x the whole-image inference).

Prompts: the challenge protocol (inference/interactive/benchmark.py) on both kidneys of a CT
phantom (objects whose ROI fits in 128^3 voxels), a first click and separately a first box, each
followed by 5 corrective clicks: the first 20 prompts per engine; the median of their predict
times is the latency (opening the image is timed apart). The whole-image inference is
app.actions.segmenting.segment with the default CT model, run twice (the first loads the model);
the second is the reference. Every registered engine usable here is measured.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import peak_rss_mib  # noqa: E402


def kidneys():
    from inference.interactive.benchmark import ct_cases

    cases = [c for c in ct_cases(1, both_kidneys=True) if "kidney" in c.name]
    return cases[0].volume, cases


def main() -> None:
    import torch

    from app.actions import segmenting
    from app.actions.models import default_model
    from inference.interactive.benchmark import run_case, usable_engines
    from inference.interactive.engine import make_engine

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vol, cases = kidneys()
    shape = vol.array.shape
    print(f"CT phantom {shape[::-1]} (x, y, z) at {vol.geometry.spacing.tolist()} mm; "
          f"{torch.get_num_threads()} threads, "
          f"device {args.device}")
    card = default_model(vol)
    for attempt in ("load + run", "run"):
        t = time.perf_counter()
        seg = segmenting.segment(vol, card, args.device)
        whole = time.perf_counter() - t
        print(f"whole-image inference, {card.id} v{card.version} ({attempt}): {whole:.2f} s")
    del seg
    names, skipped = usable_engines()
    for name, why in skipped.items():
        print(f"{name:14s} not measured: {why}")
    for name in names:
        engine = make_engine(name, args.device)
        t = time.perf_counter()
        state = engine.open(vol)
        opened = time.perf_counter() - t
        seconds, dice = [], []
        for case in cases:
            for start in ("click", "box"):
                r = run_case(state, case, start, name)
                seconds += r.seconds
                dice.append(r.dice[-1])
        seconds = seconds[: args.prompts]
        med = float(np.median(seconds))
        print(f"{name:14s} open {opened:.2f} s; median of {len(seconds)} prompts {med:.3f} s "
              f"(max {max(seconds):.3f} s) = {med / whole:.3f}x the whole-image inference; "
              f"final Dice {np.mean(dice):.3f}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
