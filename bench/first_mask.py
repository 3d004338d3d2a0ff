#!/usr/bin/env python3
"""Time to the first mask (issue 20, item 7). Every figure in wall and CPU (user + system) seconds, with
its ratio to the network alone measured in this same run (the other figures wait on it):

- the network alone: the default CT model's sliding window over a 512x512x120 CT-like DICOM series,
  in this process (model built and warmed, input prepared), in window batches (what runs) and in the
  pairs it ran before
- the labels on the image grid (what the first mask needs), and the float16 probabilities there (made
  only when explanations ask), against the per-class scipy resampling of the first version
- `main.py segment SERIES OUT.nii.gz` as a whole fresh process (imports, reading, model, labels,
  guard, writing)                                                           goal: <= 15 s
- `python main.py` to the bundled sample segmented on screen, through the app's start-up probe (needs
  a display or Xvfb: `xvfb-run -a python bench/first_mask.py`)            goal: <= 10 s

Medians of --repeat fresh processes, each with a fresh HOME. On a shared machine wall time waits on
other work; CPU time shows what this work costs. --small measures a 256x256x60 series (development).
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


def whole_process(series: Path, out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of `main.py segment` in a fresh process."""
    seconds, proc = run_child([str(ROOT / "main.py"), "segment", str(series), str(out)], ROOT, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"main.py segment failed: {proc.stderr[-600:]}")
    return seconds, proc.cpu_seconds


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - w, time.process_time() - c), result


def in_process(series: Path, scipy: bool) -> dict:
    """(wall, CPU) seconds of the network, the labels and the probabilities on the image grid, in
    this process; the per-class scipy mapping too if ``scipy``."""
    from app.actions.models import default_model
    from core.resample import resample
    from formats.io import read_image
    from inference import device as devices
    from inference.image_grid import OnImageGrid
    from inference.runner import from_model_axes, load_model, model_grid, model_input, predict, to_model_axes

    volume = read_image(str(series))
    card = default_model(volume)
    dev = devices.pick()
    net = load_model(card, dev)
    grid = model_grid(volume, card)
    x = to_model_axes(model_input(volume, card, grid), card)
    predict(net, x, card, dev)  # warm up: the kernels for these shapes
    times = {}
    times["network"], probs = _timed(lambda: from_model_axes(predict(net, x, card, dev), card))
    times["network in pairs"], _ = _timed(lambda: predict(net, x, card, dev, sw_batch_size=2))
    mapped = OnImageGrid(probs, grid, volume.geometry)
    times["labels"], _ = _timed(lambda: mapped.labels())
    times["probabilities"], _ = _timed(lambda: mapped.probabilities())
    if scipy:
        times["scipy"], _ = _timed(lambda: [resample(p, grid, volume.geometry, order=1, fill=1.0 if c == 0 else 0.0)
                                            .astype(np.float16) for c, p in enumerate(probs)])
    return times


def _median(pairs: list) -> tuple[float, float]:
    return statistics.median(w for w, _ in pairs), statistics.median(c for _, c in pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-gui", action="store_true", help="skip the start-to-screen figure (no display)")
    ap.add_argument("--small", action="store_true", help="a 256x256x60 series instead of 512x512x120")
    ap.add_argument("--no-scipy", action="store_true", help="skip the per-class scipy reference (slow)")
    args = ap.parse_args()
    size = (256, 60) if args.small else (512, 120)
    rows = []

    def row(label, wall_cpu, goal=None):
        wall, cpu = wall_cpu
        base = rows[0][1] if rows else wall_cpu  # the network alone
        met = "" if goal is None else f"   goal <= {goal:g} s: {'met' if wall <= goal else 'NOT met'}"
        rows.append((label, wall_cpu))
        print(f"{label:56s} wall {wall:6.2f} s  cpu {cpu:6.2f} s   {wall / base[0]:5.2f}x wall  "
              f"{cpu / base[1]:5.2f}x cpu{met}", flush=True)

    with tempfile.TemporaryDirectory(prefix="delineate-first-mask-") as tmp:
        series, out = Path(tmp) / "ct", Path(tmp) / "labels.nii.gz"
        make_ct(series, *size)
        print(f"{size[0]}x{size[0]}x{size[1]} CT-like series; ratios to the network alone (this process)")
        t = in_process(series, not args.no_scipy)
        row("network alone (default CT model, warmed, this process)", t["network"])
        row("  the same in pairs of windows (before)", t["network in pairs"])
        row("labels on the image grid (the first mask)", t["labels"])
        row("float16 probabilities on the image grid (when asked)", t["probabilities"])
        if "scipy" in t:
            row("  per-class scipy probabilities (the first version)", t["scipy"])
        row("main.py segment, whole process", _median([whole_process(series, out) for _ in range(args.repeat)]),
            goal=15)
    if not args.no_gui:
        try:
            cpu = []
            wall = statistics.median(probed([sys.executable, str(ROOT / "main.py")], "segmented", cpu)
                                     for _ in range(args.repeat))
            row("python main.py to the sample segmented on screen", (wall, statistics.median(cpu)), goal=10)
        except NoWindow as exc:
            print(f"python main.py to the sample segmented on screen: {exc}")


if __name__ == "__main__":
    main()
