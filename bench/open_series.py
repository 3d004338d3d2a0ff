#!/usr/bin/env python3
"""Open a 512x512x300 int16 CT-like DICOM series: time to the first slice and to the whole volume,
beside SimpleITK's ImageSeriesReader on the same files in the same run (ratios; lower is better).

Goal: first slice <= 0.5x SimpleITK's full read, whole volume <= 1.0x. Delineate is timed twice:
with its quick header walk (the default) and with every header read by pydicom (as before it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.volume import Volume  # noqa: E402
from formats.dicom.load import load_series  # noqa: E402
from formats.dicom.scan import list_series  # noqa: E402
from formats.dicom.write import write_series  # noqa: E402


def make_series(folder: Path, nx: int, nz: int) -> Volume:
    z, y, x = np.ogrid[:nz, :nx, :nx]
    body = ((x - nx / 2) ** 2 / (0.4 * nx) ** 2 + (y - nx / 2) ** 2 / (0.3 * nx) ** 2) < 1
    rng = np.random.default_rng(0)
    arr = np.where(body, 40, -1000).astype(np.int16) + rng.integers(-20, 20, (nz, nx, nx), dtype=np.int16)
    vol = Volume.from_array(arr, spacing=(0.7, 0.7, 1.25), origin=(-180, -180, -300), modality="CT")
    write_series(vol, folder)
    return vol


def ours(folder: Path, quick: bool = True):
    t0 = time.perf_counter()
    first = {}
    series = list_series(folder, quick=quick)
    t_headers = time.perf_counter() - t0
    vol = load_series(series[0], on_first_slice=lambda k, s, g: first.setdefault("t", time.perf_counter() - t0))
    return t_headers, first["t"], time.perf_counter() - t0, vol


def simpleitk(folder: Path):
    import SimpleITK as sitk

    t0 = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    img = reader.Execute()
    elapsed = time.perf_counter() - t0
    return elapsed, sitk.GetArrayFromImage(img)  # a copy, untimed: a view would outlive img's buffer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        t = time.perf_counter()
        ref = make_series(folder, args.size, args.slices)
        print(f"generated {args.size}x{args.size}x{args.slices} int16 series in {time.perf_counter() - t:.1f} s")
        simpleitk(folder)  # warm the page cache for both readers alike
        rows = {True: [], False: []}
        for _ in range(args.repeat):
            s, arr = simpleitk(folder)
            assert np.array_equal(arr, ref.array)
            for quick in (False, True):
                h, f, w, vol = ours(folder, quick)
                assert np.array_equal(vol.array, ref.array)
                rows[quick].append((s, h, f, w))
        s = min(r[0] for r in rows[True])
        print(f"SimpleITK ImageSeriesReader, whole volume : {s * 1000:8.1f} ms   (baseline 1.00x)")
        for quick, name in ((False, "every header read by pydicom (before)"), (True, "quick headers")):
            h, f, w = (min(r[i] for r in rows[quick]) for i in (1, 2, 3))
            print(f"Delineate, {name}:")
            print(f"  headers scanned and sorted              : {h * 1000:8.1f} ms   ({h / s:.2f}x)")
            print(f"  first slice ready                       : {f * 1000:8.1f} ms   ({f / s:.2f}x, goal <= 0.50x)")
            print(f"  whole volume ready                      : {w * 1000:8.1f} ms   ({w / s:.2f}x, goal <= 1.00x)")
        print(f"(best of {args.repeat} runs each, same files, same process, interleaved; voxels verified identical)")


if __name__ == "__main__":
    main()
