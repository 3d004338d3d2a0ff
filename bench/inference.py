#!/usr/bin/env python3
"""The default 3D model on a 160x192x160 volume: Delineate's runner (preprocessing, sliding window,
probabilities and labels back on the image grid) vs MONAI's sliding_window_inference of the same
network on the same input, same run (ratio; lower is better). Goal on CPU: <= 0.5x.

The volume is given at the model's spacing, so both do exactly the same windows: the figure is
the runner's own speed, not a saving from resampling. Peak memory (RSS high-water mark) is printed.
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


def main() -> None:
    import torch
    from monai.inferers import sliding_window_inference

    from core.volume import Volume
    from inference.registry import Registry
    from inference.runner import load_model, model_input, segment

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="brain-tissue")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    card = Registry().get(args.model)
    dev = torch.device(args.device)
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:160, :192, :160]
    blob = ((z - 80) / 70.0) ** 2 + ((y - 96) / 85.0) ** 2 + ((x - 80) / 65.0) ** 2
    arr = np.where(blob < 1, 80 + 40 * np.sin(x / 6.0) * np.cos(y / 7.0), 5).astype(np.float32)
    arr += rng.normal(0, 4, arr.shape).astype(np.float32)
    vol = Volume.from_array(arr, spacing=card.spacing or (1, 1, 1), modality=card.modality)
    print(f"model {card.id} v{card.version}: {card.architecture} {card.parameters}, patch {card.patch_size}, "
          f"overlap {card.overlap}; input {arr.shape[::-1]} (x, y, z) at the model's spacing; "
          f"{torch.get_num_threads()} threads, device {dev}")

    # a region-first card (mask_from) runs two networks: the baseline slides both, and ours finds the
    # region afresh each time (model_input keeps the last one for explanations)
    from inference import mask_from

    stages = [Registry().get(card.mask_from["model"], card.mask_from["version"])] if card.mask_from else []
    stages.append(card)
    inputs = [(c, load_model(c, dev), torch.from_numpy(model_input(vol, c, vol.geometry))[None].to(dev)) for c in stages]

    def baseline():
        with torch.no_grad():
            for c, net, xin in inputs:
                out = sliding_window_inference(xin, c.patch_size, 1, net, overlap=c.overlap, mode="gaussian")
        return torch.softmax(out, 1)

    def ours():
        mask_from.forget()
        return segment(vol, card, device=args.device)

    for name, fn in (("baseline", baseline), ("runner", ours)):
        fn()  # warm-up (allocations, kernels, ONNX/oneDNN caches)
    t_base = min(_time(baseline) for _ in range(args.repeat))
    t_ours = min(_time(ours) for _ in range(args.repeat))
    print(f"MONAI sliding_window_inference (no_grad, sw_batch 1)  {t_base:7.2f} s = 1.00x"
          + (f"   ({len(stages)} networks: {' then '.join(f'{c.id} v{c.version}' for c in stages)})" if len(stages) > 1 else ""))
    print(f"Delineate runner, labels + probabilities on the grid {t_ours:7.2f} s = {t_ours / t_base:.2f}x"
          f"   (goal <= 0.5x on CPU)")
    from inference import device as devices

    if devices.cpu_has_fast_bf16() and dev.type == "cpu":
        fast = ours().labels.array
        devices._FAST_BF16 = False
        t_fp32 = min(_time(ours) for _ in range(args.repeat))
        exact = ours().labels.array
        devices._FAST_BF16 = True
        print(f"  same runner in fp32 (no bf16)                      {t_fp32:7.2f} s = {t_fp32 / t_base:.2f}x")
        print(f"  bf16 vs fp32 labels: {100 * float((fast == exact).mean()):.3f} % of voxels identical")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
