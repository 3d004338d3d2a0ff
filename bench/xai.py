#!/usr/bin/env python3
"""Explanations of the default brain model on the MNI152 T1, each timed against one plain inference
(the runner) on the same input in the same run (ratios; lower is better), plus peak memory.
Goals: Grad-CAM <= 1.5x, TTA uncertainty <= 4x (default settings), occlusion (default blocks) <= 10x.
Integrated gradients has no goal (it is many backward passes by design)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import peak_rss_mib  # noqa: E402


def main() -> None:
    import torch

    from formats import samples
    from formats.io import read_image
    from inference.registry import Registry
    from inference.runner import load_model, segment
    from inference.xai import explain, uncertainty

    card = Registry().get("brain-tissue")
    net = load_model(card, torch.device("cpu"))
    vol = read_image(samples.path("mni152-t1"))
    segment(vol, card, net=net, device="cpu")  # warm-up
    t0 = time.perf_counter()
    seg = segment(vol, card, net=net, device="cpu")
    t_inf = time.perf_counter() - t0
    print(f"{card.id} v{card.version} on {vol.geometry.size} MNI152 T1; {torch.get_num_threads()} threads")
    print(f"{'inference (runner)':40s} {t_inf:6.2f} s = 1.00x")
    gm = seg.labels.array == 2
    runs = [("Grad-CAM (grey matter)", 1.5, lambda: explain(vol, card, 2, "gradcam", net=net, device="cpu",
                                                             labels=seg.labels.array)),
            ("TTA uncertainty (4 passes, model grid)", 4.0, lambda: uncertainty(vol, card, net=net, device="cpu",
                                                                     first=seg.probabilities)),
            ("occlusion (grey matter)", 10.0, lambda: explain(vol, card, 2, "occlusion", roi=gm, net=net,
                                                               device="cpu")),
            ("integrated gradients (16 steps)", None, lambda: explain(vol, card, 2, "ig", roi=gm, net=net,
                                                                      device="cpu"))]
    for name, goal, fn in runs:
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        print(f"{name:40s} {t:6.2f} s = {t / t_inf:5.2f}x" + (f"   (goal <= {goal:g}x)" if goal else ""))
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
