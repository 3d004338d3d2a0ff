#!/usr/bin/env python3
"""Explanations of the default brain model on the MNI152 T1, each timed against one plain inference
(the runner) on the same input in the same run (ratios; lower is better), plus peak memory.
Goals: Grad-CAM <= 1.5x, TTA uncertainty <= 4x (default settings), occlusion (default blocks) <= 10x.
Integrated gradients has no goal (it is many backward passes by design). Everything in fp32 (the
explanations always are; the inference is pinned to it for a like-for-like ratio).

--only NAMES: run only these of gradcam,uncertainty,occlusion,ig (default: all).
--faithfulness [METHODS]: also the issue-19 measures per method and tissue label on the whole
template (mass inside the brain, within 5 mm of the segment, seam ratio, deletion / random
deletion area and insertion / random insertion area, blocks blurred away; and the same ratios with
the segment's own blocks first, the reference for what each can show for that label); slow on a CPU (occlusion and IG especially)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import peak_rss_mib  # noqa: E402


def faithfulness(vol, card, net, labels, methods) -> None:
    from inference.xai import explain
    from inference.xai_checks import brain_mask, deletion_curves, insertion_curves, region_first, verdicts

    inside = brain_mask(vol)
    print(f"{'method':10s} {'label':14s} {'inside':>7s} {'<=5mm':>7s} {'seam':>6s} {'deletion':>9s} {'seg-first':>9s} "
          f"{'insertion':>9s} {'seg-first':>9s}  (goals: >= 0.70, >= 0.60, <= 1.2, <= 0.8; insertion: higher is "
          "better, 1 is chance; seg-first: the segment itself first, the reference)")
    fractions = (0, 0.1, 0.25, 0.5, 1)
    reference = {}
    for method in methods:
        for lab in card.labels:
            value = lab.value
            roi = labels == value
            if not roi.any():
                continue
            e = explain(vol, card, value, method, roi=roi, net=net, device="cpu", ig_steps=8)
            r = verdicts(vol, card, net, e, roi, inside, fractions=fractions)
            if value not in reference:
                first = region_first(vol, card, roi)
                reference[value] = [fn(vol, card, net, e, roi, fractions, order=first, randoms=3)["ratio"]
                                     for fn in (deletion_curves, insertion_curves)]
            print(f"{method:10s} {lab.name:14s} {r['inside']:7.2f} {r['near_5mm']:7.2f} {r['seam']:6.2f} "
                  f"{r['deletion']:9.2f} {reference[value][0]:9.2f} {r['insertion']:9.2f} {reference[value][1]:9.2f}",
                  flush=True)


def main() -> None:
    import torch

    from inference import device as devices

    devices._FAST_BF16 = False  # fp32: the goals are stated against an fp32 inference

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
    only = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
    keys = ("gradcam", "uncertainty", "occlusion", "ig")
    runs = [r for k, r in zip(keys, runs) if only is None or k in only]
    for name, goal, fn in runs:
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        print(f"{name:40s} {t:6.2f} s = {t / t_inf:5.2f}x" + (f"   (goal <= {goal:g}x)" if goal else ""))
    print(f"peak RSS {peak_rss_mib():.0f} MiB")
    if "--faithfulness" in sys.argv:
        rest = sys.argv[sys.argv.index("--faithfulness") + 1:]
        faithfulness(vol, card, net, seg.labels.array, rest[0].split(",") if rest else ["gradcam", "occlusion", "ig"])


if __name__ == "__main__":
    main()
