#!/usr/bin/env python3
"""Time to the first mask (issue 20, item 7), each figure beside a baseline measured in the same run:

- `main.py segment SERIES OUT.nii.gz` on a 512x512x120 CT-like DICOM series, as a whole fresh process
  (imports, reading, the default CT model, mapping back, writing), against the network alone on the
  same input in this process (model built and warmed, input prepared)      goal: whole process <= 15 s
- the mapping of the probabilities back onto the image grid, all classes at once (inference.runner)
  against the per-class scipy resampling it replaced
- `python main.py` to the bundled sample segmented on screen (the app's start-up probe; needs a
  display or Xvfb: `xvfb-run -a python bench/first_mask.py`)               goal: <= 10 s

Medians of --repeat fresh processes, each with a fresh HOME.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/inference.py must not hide the package

from startup import NoWindow, probed, run_child  # noqa: E402


def make_ct(folder: Path, nx: int = 512, nz: int = 120):
    """A CT-like thorax-abdomen section: body, fat rim, lungs, liver, kidneys, spine (HU as on CT)."""
    from core.volume import Volume
    from formats.dicom.write import write_series

    z, y, x = np.ogrid[:nz, :nx, :nx]
    u, v = (x - nx / 2) / nx, (y - nx / 2) / nx

    def ellipse(cx, cy, rx, ry, cz=None, rz=None):
        m = ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 < 1
        return m if cz is None else m & (((z - cz) / rz) ** 2 < 1)

    rng = np.random.default_rng(0)
    arr = np.full((nz, nx, nx), -1000, np.int16)
    arr[np.broadcast_to(ellipse(0, 0, 0.42, 0.31), arr.shape)] = -100
    arr[np.broadcast_to(ellipse(0, 0, 0.39, 0.28), arr.shape)] = 45
    for side in (-1, 1):
        arr[ellipse(side * 0.18, -0.05, 0.12, 0.16, nz * 0.25, nz * 0.3)] = -860
        arr[ellipse(side * 0.14, 0.12, 0.04, 0.06, nz * 0.7, nz * 0.15)] = 30
    arr[ellipse(-0.13, 0.0, 0.14, 0.12, nz * 0.6, nz * 0.25)] = 60
    arr[np.broadcast_to(ellipse(0, 0.2, 0.035, 0.035), arr.shape)] = 700
    arr += rng.integers(-15, 16, arr.shape, dtype=np.int16)
    write_series(Volume.from_array(arr, spacing=(0.7, 0.7, 2.5), origin=(-180, -180, -150), modality="CT"), folder)


def whole_process(series: Path, out: Path) -> float:
    seconds, proc = run_child([str(ROOT / "main.py"), "segment", str(series), str(out)], ROOT, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"main.py segment failed: {proc.stderr[-600:]}")
    return seconds


def network_alone(series: Path) -> tuple[float, float, float]:
    """(network seconds, mapping-back seconds, per-class scipy mapping seconds) in this process."""
    import torch

    from app.actions.models import default_model
    from core.resample import resample
    from formats.io import read_image
    from inference import device as devices
    from inference.runner import (from_model_axes, load_model, model_grid, model_input, predict,
                                  to_image_grid, to_model_axes)

    volume = read_image(str(series))
    card = default_model(volume)
    dev = devices.pick()
    net = load_model(card, dev)
    grid = model_grid(volume, card)
    x = to_model_axes(model_input(volume, card, grid), card)
    predict(net, x[(slice(None),) + tuple(slice(0, n) for n in card.patch_size)], card, dev)  # warm up
    t = time.perf_counter()
    probs = from_model_axes(predict(net, x, card, dev), card)
    t_net = time.perf_counter() - t
    t = time.perf_counter()
    to_image_grid(probs, grid, volume.geometry)
    t_map = time.perf_counter() - t
    t = time.perf_counter()
    for c, p in enumerate(probs):
        resample(p, grid, volume.geometry, order=1, fill=1.0 if c == 0 else 0.0).astype(np.float16)
    t_scipy = time.perf_counter() - t
    del torch
    return t_net, t_map, t_scipy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-gui", action="store_true", help="skip the start-to-screen figure (no display)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="delineate-first-mask-") as tmp:
        series, out = Path(tmp) / "ct", Path(tmp) / "labels.nii.gz"
        make_ct(series)
        t_net, t_map, t_scipy = network_alone(series)
        whole = statistics.median(whole_process(series, out) for _ in range(args.repeat))
        print(f"network alone (default CT model, warmed, this process) : {t_net:7.2f} s   baseline 1.00x")
        print(f"main.py segment, whole process (512x512x120 CT series)  : {whole:7.2f} s   "
              f"{whole / t_net:.2f}x   (goal <= 15 s)")
        print(f"probabilities back onto the image grid, all classes    : {t_map:7.2f} s   "
              f"{t_map / t_scipy:.2f}x the per-class scipy path ({t_scipy:.2f} s)")
    if not args.no_gui:
        try:
            shown = statistics.median(probed([sys.executable, str(ROOT / "main.py")], "segmented")
                                      for _ in range(args.repeat))
            print(f"python main.py to the sample segmented on screen       : {shown:7.2f} s   "
                  f"{shown / t_net:.2f}x   (goal <= 10 s)")
        except NoWindow as exc:
            print(f"python main.py to the sample segmented on screen: {exc}")


if __name__ == "__main__":
    main()
